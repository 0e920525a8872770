/* SPDX-License-Identifier: MIT */
#include "daemon/daemon.h"

#include <fcntl.h>
#include <stddef.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/log.h"
#include "core/matching.h"
#include "daemon/server.h"
#include "wire/scratch.h"

/* Ports and notifications are few per session and looked up by id; lists
 * under reg_lock keep them simple and in one place. */
typedef struct port {
        uint64_t id;
        int fd;                 /* tetherd's end, non-blocking */
        loop_source src;        /* the main loop watches fd for the client's hang-up */
        session *owner;         /* alive while the port is listed: a session's close
                                 * releases its ports first */
        bool overflowed;
        uint64_t dropped;       /* messages lost to a full socket, this overflow */
        struct port *next;
} port;

typedef struct notification {
        uint64_t id;
        uint64_t port_id;
        uint64_t cookie;
        uint32_t type;
        const session *owner;
        tether_value *matching;
        struct notification *next;
} notification;

static port *ports;
static notification *notifications;
static uint64_t next_port_id = 1, next_notification_id = 1;

static port *find_port_locked(uint64_t id)
{
        for (port *p = ports; p; p = p->next)
                if (p->id == id)
                        return p;
        return NULL;
}

/* reg_lock held. The port leaves the list and takes its notifications
 * with it; the main thread frees it after its batch. */
static void port_end_locked(port **link)
{
        port *p = *link;
        *link = p->next;
        for (notification **pp = &notifications; *pp;) {
                notification *n = *pp;
                if (n->port_id == p->id) {
                        *pp = n->next;
                        tether_value_unref(n->matching);
                        free(n);
                        p->owner->n_notifications--;
                } else {
                        pp = &n->next;
                }
        }
        budget_release_fds(p->owner->budget, 1);
        server_retire(&p->src, p);
}

/* Main thread: the client destroyed its port (or died): a long-lived
 * session may create and drop ports without ever reaching its limit. */
static void port_hangup(loop_source *src, uint32_t events)
{
        port *p = (port *)((char *)src - offsetof(port, src));
        pthread_mutex_lock(&reg_lock);
        for (port **pp = &ports; *pp; pp = &(*pp)->next) {
                if (*pp == p) {
                        p->owner->n_ports--;
                        port_end_locked(pp);
                        break;
                }
        }
        pthread_mutex_unlock(&reg_lock);
}

tether_ret_t port_create(session *s, uint64_t *ret_id, int *ret_client_fd)
{
        int sv[2];
        port *p = calloc(1, sizeof(*p));
        if (!p)
                return TETHER_ERR_NO_MEMORY;
        /* One fd stays here for the port's life (the client's end leaves
         * with the reply). */
        tether_ret_t r = budget_charge_fds(s->budget, 1);
        if (r != TETHER_SUCCESS) {
                free(p);
                return r;
        }
        r = wire_channel_pair(true, sv); /* ports only carry messages to the client */
        if (r != TETHER_SUCCESS) {
                budget_release_fds(s->budget, 1);
                free(p);
                return r;
        }
        p->fd = sv[0];
        p->owner = s;
        p->src = (loop_source){ .fd = sv[0], .fn = port_hangup };
        if (server_watch(&p->src) != TETHER_SUCCESS) {
                close(sv[0]);
                close(sv[1]);
                budget_release_fds(s->budget, 1);
                free(p);
                return TETHER_ERR_NO_RESOURCES;
        }
        pthread_mutex_lock(&reg_lock);
        p->id = next_port_id++;
        p->next = ports;
        ports = p;
        pthread_mutex_unlock(&reg_lock);
        *ret_id = p->id;
        *ret_client_fd = sv[1];
        return TETHER_SUCCESS;
}

tether_ret_t port_dup_for(uint64_t port_id, uint64_t session_id, int *ret_fd)
{
        tether_ret_t r = TETHER_ERR_BAD_ARGUMENT;
        pthread_mutex_lock(&reg_lock);
        port *p = find_port_locked(port_id);
        if (p && p->owner->id == session_id) {
                *ret_fd = fcntl(p->fd, F_DUPFD_CLOEXEC, 0);
                r = *ret_fd >= 0 ? TETHER_SUCCESS : TETHER_ERR_NO_RESOURCES;
        }
        pthread_mutex_unlock(&reg_lock);
        return r;
}

bool port_owned_by(uint64_t port_id, const session *s)
{
        pthread_mutex_lock(&reg_lock);
        port *p = find_port_locked(port_id);
        bool owned = p && p->owner == s;
        pthread_mutex_unlock(&reg_lock);
        return owned;
}

/* TETHER_ERR_NO_SPACE: the port is full and m was dropped. */
static tether_ret_t port_send_locked(port *p, const wire_msg *m)
{
        tether_ret_t r = wire_send(p->fd, m, -1);
        /* A client that does not drain its port loses messages, as a full
         * Mach queue does, and nothing is queued for it here; say so once
         * an overflow, not per message, and how many it lost once it reads
         * again. */
        if (r == TETHER_ERR_NOT_RESPONDING) {
                if (!p->overflowed)
                        session_warn(p->owner,
                                     "client pid %d: notification port %llu is full; dropping messages until it drains",
                                     (int)p->owner->task.pid, (unsigned long long)p->id);
                p->overflowed = true;
                p->dropped++;
                r = TETHER_ERR_NO_SPACE;
        } else if (r == TETHER_SUCCESS && p->overflowed) {
                session_warn(p->owner, "client pid %d: notification port %llu drained; %llu messages were dropped",
                             (int)p->owner->task.pid, (unsigned long long)p->id, (unsigned long long)p->dropped);
                p->overflowed = false;
                p->dropped = 0;
        }
        return r;
}

void ports_release_session(session *s)
{
        pthread_mutex_lock(&reg_lock);
        for (notification **pp = &notifications; *pp;) {
                notification *n = *pp;
                if (n->owner == s) {
                        *pp = n->next;
                        tether_value_unref(n->matching);
                        free(n);
                } else {
                        pp = &n->next;
                }
        }
        for (port **pp = &ports; *pp;) {
                if ((*pp)->owner == s)
                        port_end_locked(pp);
                else
                        pp = &(*pp)->next;
        }
        s->n_notifications = 0;
        s->n_ports = 0;
        pthread_mutex_unlock(&reg_lock);
}

static void send_service_locked(const notification *n, const entry *e, uint32_t type)
{
        port *p = find_port_locked(n->port_id);
        if (!p)
                return;
        wire_msg *m = wire_scratch(WIRE_SCRATCH_NOTIFY);
        if (!m)
                return; /* lost, as one to a full port is */
        wire_msg_init(m, WIRE_NOTIFY_SERVICE, 0, TETHER_SUCCESS);
        wire_put_u64(m, n->cookie);
        wire_put_u32(m, type);
        wire_put_u32(m, 0);
        wire_put_u64(m, e->id);
        wire_msg_finish(m);
        (void)port_send_locked(p, m);
}

static bool is_live_service(const entry *e)
{
        return e->service && e->service->entry == e && (e->state & TETHER_ENTRY_ACTIVE) &&
               (e->state & TETHER_ENTRY_MATCHED);
}

typedef struct existing_ctx {
        const notification *n;
} existing_ctx;

static bool send_existing(entry *e, void *arg)
{
        existing_ctx *c = arg;
        if (is_live_service(e) && registry_match_locked(c->n->matching, e))
                send_service_locked(c->n, e, TETHER_NOTIFY_MATCHED);
        return true;
}

tether_ret_t notification_add(session *s, uint64_t port_id, uint32_t type, uint64_t cookie,
                              tether_value *matching, uint64_t *ret_id)
{
        if (type != TETHER_NOTIFY_MATCHED && type != TETHER_NOTIFY_PUBLISHED && type != TETHER_NOTIFY_TERMINATED &&
            type != TETHER_NOTIFY_PROPERTIES_CHANGED)
                return TETHER_ERR_BAD_ARGUMENT;
        tether_ret_t r = matching_validate(matching);
        if (r != TETHER_SUCCESS)
                return r;
        notification *n = calloc(1, sizeof(*n));
        if (!n)
                return TETHER_ERR_NO_MEMORY;
        pthread_mutex_lock(&reg_lock);
        port *p = find_port_locked(port_id);
        if (!p || p->owner != s)
                r = TETHER_ERR_BAD_ARGUMENT;
        else if (s->n_notifications >= TETHERD_MAX_NOTIFICATIONS_PER_SESSION)
                r = TETHER_ERR_NO_RESOURCES;
        if (r == TETHER_SUCCESS) {
                n->id = next_notification_id++;
                n->port_id = port_id;
                n->cookie = cookie;
                n->type = type;
                n->owner = s;
                n->matching = tether_value_ref(matching);
                n->next = notifications;
                notifications = n;
                s->n_notifications++;
                *ret_id = n->id;
                /* Existing services first, under the same lock that
                 * publishes new ones: none is missed or told twice. */
                if (type == TETHER_NOTIFY_MATCHED) {
                        existing_ctx c = { .n = n };
                        registry_walk_locked(registry_root(), send_existing, &c);
                }
        }
        pthread_mutex_unlock(&reg_lock);
        if (r != TETHER_SUCCESS)
                free(n);
        return r;
}

tether_ret_t notification_remove(session *s, uint64_t id)
{
        tether_ret_t r = TETHER_ERR_NOT_FOUND;
        pthread_mutex_lock(&reg_lock);
        for (notification **pp = &notifications; *pp; pp = &(*pp)->next) {
                notification *n = *pp;
                if (n->id == id && n->owner == s) {
                        *pp = n->next;
                        tether_value_unref(n->matching);
                        free(n);
                        s->n_notifications--;
                        r = TETHER_SUCCESS;
                        break;
                }
        }
        pthread_mutex_unlock(&reg_lock);
        return r;
}

void notify_service_locked(entry *e, uint32_t type)
{
        for (notification *n = notifications; n; n = n->next) {
                bool wants = type == TETHER_NOTIFY_TERMINATED ? n->type == TETHER_NOTIFY_TERMINATED
                                                              : n->type != TETHER_NOTIFY_TERMINATED &&
                                                                        n->type != TETHER_NOTIFY_PROPERTIES_CHANGED;
                if (wants && registry_match_locked(n->matching, e))
                        send_service_locked(n, e, type == TETHER_NOTIFY_TERMINATED ? type : n->type);
        }
}

void notify_properties_changed_locked(entry *e)
{
        /* A service still starting is not yet published: its first table
         * arrives with the publication, not as a change of it. */
        if (!is_live_service(e))
                return;
        for (notification *n = notifications; n; n = n->next)
                if (n->type == TETHER_NOTIFY_PROPERTIES_CHANGED && registry_match_locked(n->matching, e))
                        send_service_locked(n, e, TETHER_NOTIFY_PROPERTIES_CHANGED);
}

void notify_shutdown(void)
{
        pthread_mutex_lock(&reg_lock);
        while (notifications) {
                notification *n = notifications;
                notifications = n->next;
                tether_value_unref(n->matching);
                free(n);
        }
        while (ports)
                port_end_locked(&ports);
        pthread_mutex_unlock(&reg_lock);
        server_reap_retired();
}

tether_ret_t env_port_send(uint64_t port_id, const wire_msg *m)
{
        tether_ret_t r = TETHER_ERR_NOT_ATTACHED;
        pthread_mutex_lock(&reg_lock);
        port *p = find_port_locked(port_id);
        if (p)
                r = port_send_locked(p, m);
        pthread_mutex_unlock(&reg_lock);
        /* The client hung up its end, and the main loop has not yet seen
         * it: gone all the same. */
        return r == TETHER_SUCCESS || r == TETHER_ERR_NO_SPACE ? r : TETHER_ERR_NOT_ATTACHED;
}
