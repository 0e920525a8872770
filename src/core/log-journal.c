/* SPDX-License-Identifier: MIT */
#include "core/log-journal.h"

#include <stdio.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>
/* CODE_FILE= and the like would name this file, not the line's. */
#define SD_JOURNAL_SUPPRESS_LOCATION
#include <systemd/sd-journal.h>

#include "core/log.h"

/* Where libsystemd sends entries; it has no name for it. */
#define JOURNAL_SOCKET "/run/systemd/journal/socket"

static char ident_field[64];

static bool journal_sink(enum log_level level, const log_fields *fields, const char *msg)
{
        char message[1100], priority[16], bundle[sizeof("TETHER_BUNDLE=") + LOG_MAX_BUNDLE];
        struct iovec iov[4];
        int n = 0;
        snprintf(message, sizeof(message), "MESSAGE=%s", msg);
        snprintf(priority, sizeof(priority), "PRIORITY=%d", (int)level); /* the levels are syslog's */
        iov[n++] = (struct iovec){ message, strlen(message) };
        iov[n++] = (struct iovec){ priority, strlen(priority) };
        iov[n++] = (struct iovec){ ident_field, strlen(ident_field) };
        if (fields && fields->bundle && *fields->bundle) {
                snprintf(bundle, sizeof(bundle), "TETHER_BUNDLE=%s", fields->bundle);
                iov[n++] = (struct iovec){ bundle, strlen(bundle) };
        }
        return sd_journal_sendv(iov, n) >= 0;
}

bool log_journal_use(const char *identifier)
{
        /* sd_journal_sendv drops a line silently when the socket is
         * missing, so a journal that is not there is noticed here: the
         * stream on stderr then keeps the lines (with "<N>" levels). */
        if (!log_stderr_is_journal() || access(JOURNAL_SOCKET, F_OK) != 0)
                return false;
        snprintf(ident_field, sizeof(ident_field), "SYSLOG_IDENTIFIER=%s", identifier);
        log_set_sink(journal_sink);
        return true;
}
