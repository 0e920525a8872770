/* SPDX-License-Identifier: MIT */
#ifndef TETHER_TEST_ATTACK_H
#define TETHER_TEST_ATTACK_H

/*
 * An attacker program run by a hostile test: started as root or as nobody
 * (setpriv), its stdout read back as "key value" lines, its stdin held
 * open until the test lets it go (tests/hostile/attacker.c and
 * usbtmc-attacker.c keep to that).
 */

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#define ATTACK_NOBODY 65534

typedef struct attack {
        const char *mode;  /* its first argument, for messages */
        pid_t pid;
        int out, in;       /* its stdout (ours to read), its stdin (ours to close); -1 once closed */
        char buf[65536];   /* everything it said, NUL-terminated */
        size_t len;
        int status;
} attack;

/* setpriv's path, found at once: between fork and exec (with other
 * threads about) nothing that may allocate should run, and execvp may.
 * Fails the test when there is none. */
const char *attack_setpriv_path(void);
/* Start `prog sock args...` (args end with NULL) as uid, root or
 * ATTACK_NOBODY; the caller reaps it. */
void attack_spawn(attack *a, const char *prog, const char *sock, uid_t uid, const char *const *args);
/* Read what it printed, for up to ms. False at end of file. */
bool attack_read(attack *a, int ms);
/* The value of its last "key value" line, or def. */
long attack_get(const attack *a, const char *key, long def);
/* Whether a line is word, or starts with word and a space. */
bool attack_said(const attack *a, const char *word);
/* Wait up to ms for a line attack_said finds; false (and what it said
 * printed) if none came. */
bool attack_wait_for(attack *a, const char *word, int ms);

#endif
