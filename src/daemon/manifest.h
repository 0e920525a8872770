/* SPDX-License-Identifier: MIT */
#ifndef TETHER_DAEMON_MANIFEST_H
#define TETHER_DAEMON_MANIFEST_H

/*
 * Bundle manifests (docs/bundles.md, schema 1): a bundle folder's
 * manifest.json turned into a validated structure, or refused with one
 * sentence naming the key at fault and the rule it breaks, so tetherd can
 * log "bundle X: reason" and load every other bundle.
 *
 * Pure apart from the user and group database: names in "user" and
 * "access" are resolved when the manifest is read, so a misspelt name
 * refuses the bundle instead of silently shutting someone out or letting
 * someone in. No registry, no threads: safe to call from any thread.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <tether/value.h>

#define MANIFEST_SCHEMA            1
#define MANIFEST_FILE              "manifest.json"
#define MANIFEST_FOLDER_SUFFIX     ".tether"
#define MANIFEST_MAX_SIZE          (64u * 1024u)
#define MANIFEST_MAX_BUNDLE_ID     128u
#define MANIFEST_MAX_VERSION       32u
#define MANIFEST_MAX_LIBRARY       255u   /* NAME_MAX */
#define MANIFEST_MAX_PERSONALITIES 64u
#define MANIFEST_MAX_NAME          128u   /* a personality's name, its driver */
#define MANIFEST_MAX_NAMES         64u    /* entries of one "users" or "groups" */
#define MANIFEST_MAX_ACCOUNT       256u   /* a user or group name (LOGIN_NAME_MAX) */
/* The host's user when "user" is absent: the first of these that exists,
 * looked up when the host starts, not when the manifest is read. */
#define MANIFEST_DEFAULT_USER      "tether-driver"
#define MANIFEST_FALLBACK_USER     "nobody"
/* Enough for any reason (longer ones are cut, still NUL-terminated). */
#define MANIFEST_WHY_SIZE          256u

typedef struct manifest_personality {
        char *name;              /* its key in "personalities" */
        char *driver;            /* the tether_driver class_name it starts */
        tether_value *matching;  /* the IO* keys only; passed matching_validate() */
        int64_t score;           /* IOProbeScore, 0 when absent */
        const char *category;    /* IOMatchCategory, or MATCHING_DEFAULT_CATEGORY: borrowed from matching */
} manifest_personality;

/* Who may open one user-client type. uid 0 always may (manifest_may_open). */
typedef struct manifest_access {
        uint32_t type;           /* unused in manifest.default_access */
        bool anyone;             /* "users": ["*"], or no policy at all */
        uid_t *uids;
        size_t n_uids;
        gid_t *gids;
        size_t n_gids;
} manifest_access;

typedef struct manifest {
        char *dir;               /* the bundle folder, as given to manifest_parse */
        char *bundle_id;
        char *version;
        char *library;           /* dir + "/" + the manifest's "library" */
        char *user;              /* NULL: the default (MANIFEST_DEFAULT_USER) applies */
        manifest_personality *personalities;
        size_t n_personalities;  /* 1..MANIFEST_MAX_PERSONALITIES, in file order */
        /* "default", or anyone when the manifest has none: the rule for a
         * type with no entry of its own. */
        manifest_access default_access;
        manifest_access *access; /* the numbered types, sorted by type */
        size_t n_access;
} manifest;

/*
 * Parse len bytes of text (no NUL needed) as the manifest of the bundle in
 * dir, an absolute path that is not read: manifest_load checks the folder.
 * On success *ret is the manifest (manifest_free it). On failure *ret is
 * NULL and why (why_size bytes, may be 0) holds the reason, key path first:
 * "personalities.ExampleDevice: IOProviderClass is missing",
 * "access.1.users[2]: no such user \"bob\"".
 * TETHER_ERR_BAD_ARGUMENT: the manifest is refused (or an argument is bad);
 * TETHER_ERR_IO: the user database could not be read; TETHER_ERR_NO_MEMORY.
 */
tether_ret_t manifest_parse(const char *text, size_t len, const char *dir, manifest **ret,
                            char *why, size_t why_size);

/*
 * Read dir/manifest.json (a regular file of at most MANIFEST_MAX_SIZE bytes)
 * and parse it with the real path of dir; the folder must be named
 * "<bundle id>.tether" and the library must be a regular file in it (not a
 * symbolic link: what runs is what is in the folder). Errors as
 * manifest_parse, and TETHER_ERR_NOT_FOUND when dir or its manifest.json
 * does not exist, TETHER_ERR_IO when it cannot be read.
 */
tether_ret_t manifest_load(const char *dir, manifest **ret, char *why, size_t why_size);

void manifest_free(manifest *m);

/*
 * The access policy: may a caller with this uid and gid open a user client
 * of this type? uid 0 always may. Otherwise the type's entry, or
 * default_access when it has none, decides: anyone, the uid listed, or the
 * gid or one of the uid's groups (getgrouplist() of its passwd entry) listed.
 * Looks the uid up in the user database when a group list needs it.
 */
bool manifest_may_open(const manifest *m, uint32_t type, uid_t uid, gid_t gid);

/*
 * May that caller write properties of a service of this bundle (through
 * its driver, which still decides each key)? The `default` entry decides,
 * as for a user-client type with no entry of its own: a bundle that keeps
 * its instruments to a group keeps their settings to it too.
 */
bool manifest_may_write(const manifest *m, uid_t uid, gid_t gid);
/*
 * manifest_may_write's refusal with its reason, the one tetherd and the
 * driver test harness both give ("the access policy of BUNDLE does not
 * admit uid N"): true, the reason in why (cap bytes at most; why may be
 * NULL), when that caller may not write.
 */
bool manifest_write_refused(const manifest *m, uid_t uid, gid_t gid, char *why, size_t cap);

/*
 * Whether a caller with this uid and gid belongs to the named group, the
 * way the access lists count it: its gid, or one of the uid's groups
 * (getgrouplist() of its passwd entry). False when the group does not
 * exist or the lookup fails. tetherd's admin group is read this way.
 */
bool manifest_in_group(uid_t uid, gid_t gid, const char *group);

#endif
