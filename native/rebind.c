/*
 * rebind.so: an LD_PRELOAD shim that moves a program's listening port.
 *
 * websockify-ts wraps a TCP server (`websockify PORT -- PROGRAM`) by taking PORT itself and starting
 * PROGRAM with this library preloaded. The shim replaces bind(): a bind to REBIND_OLD_PORT on any
 * address, IPv4 or IPv6, becomes a bind to REBIND_NEW_PORT on loopback (127.0.0.1 for IPv4, ::1 for
 * IPv6), where only the proxy reaches it. Every other bind passes through untouched.
 *
 * When it loads, the shim also asks the kernel for a parent-death signal (SIGTERM), so that the
 * program does not outlive a proxy that was killed outright (SIGKILL). Only the proxy's direct child
 * asks, recognised by REBIND_PARENT_PID (the proxy's pid), which the shim removes from the
 * environment so that the program's own children do not see it. Why only the direct child:
 *  - The death signal follows the *parent*, which is the process that forked the child, and Linux
 *    tracks it per thread: the signal fires when the forking thread exits. Node forks from its main
 *    (event loop) thread, which lives as long as the process, so for the direct child "parent died"
 *    means "the proxy died". (A child forked from a worker thread would be killed when that thread
 *    ends; the proxy never spawns from a worker.)
 *  - A process the program forks or executes further down has its own parent, which may exit on
 *    purpose: a daemonizing program (vncserver) forks and exits, and its daemon must survive that.
 *    fork() clears the death signal anyway; execve() keeps it, so `sh -c 'exec server'` stays covered.
 * Those descendants are the proxy's business: it stops the program's process group, and every process
 * carrying its wrap token, when it stops (see src/wrap/watchdog.ts).
 *
 * Copyright the websockify-ts authors. LGPL-3.0-or-later.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <unistd.h>

typedef int (*bind_fn)(int, const struct sockaddr *, socklen_t);

/* The ports, in host byte order; 0 when the environment does not ask for a move. */
static unsigned short old_port;
static unsigned short new_port;

/* A decimal port 1-65535, or 0 for anything else (absent, empty, trailing junk, out of range). */
static unsigned short parse_port(const char *text) {
    if (text == NULL || *text == '\0') return 0;
    unsigned long value = 0;
    for (const char *c = text; *c; c++) {
        if (*c < '0' || *c > '9') return 0;
        value = value * 10 + (unsigned long)(*c - '0');
        if (value > 65535) return 0;
    }
    return (unsigned short)value;
}

/* Ask for SIGTERM when the proxy dies, if this process is the proxy's direct child (see above). */
static void watch_parent(void) {
    const char *text = getenv("REBIND_PARENT_PID");
    if (text == NULL) return;
    char *end;
    long parent = strtol(text, &end, 10);
    int valid = *text != '\0' && *end == '\0' && parent > 0;
    unsetenv("REBIND_PARENT_PID");
    if (!valid) return;
    if (prctl(PR_SET_PDEATHSIG, SIGTERM) != 0) return;
    /* The proxy may have died between fork and here: then nobody will send the signal. */
    if (getppid() != (pid_t)parent) kill(getpid(), SIGTERM);
}

__attribute__((constructor)) static void rebind_init(void) {
    old_port = parse_port(getenv("REBIND_OLD_PORT"));
    new_port = parse_port(getenv("REBIND_NEW_PORT"));
    if (old_port == 0 || new_port == 0) old_port = new_port = 0;
    watch_parent();
}

/* The bind() of the next library in line (libc, or another preloaded shim). */
static bind_fn next_bind(void) {
    static bind_fn next;
    if (next == NULL) next = (bind_fn)dlsym(RTLD_NEXT, "bind");
    return next;
}

int bind(int fd, const struct sockaddr *addr, socklen_t len) {
    bind_fn real = next_bind();
    if (real == NULL) {
        errno = ENOSYS;
        return -1;
    }
    if (old_port != 0 && addr != NULL) {
        if (addr->sa_family == AF_INET && len >= sizeof(struct sockaddr_in)) {
            struct sockaddr_in moved;
            memcpy(&moved, addr, sizeof moved);
            if (ntohs(moved.sin_port) == old_port) {
                moved.sin_port = htons(new_port);
                moved.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
                return real(fd, (const struct sockaddr *)&moved, sizeof moved);
            }
        } else if (addr->sa_family == AF_INET6 && len >= sizeof(struct sockaddr_in6)) {
            struct sockaddr_in6 moved;
            memcpy(&moved, addr, sizeof moved);
            if (ntohs(moved.sin6_port) == old_port) {
                moved.sin6_port = htons(new_port);
                moved.sin6_addr = in6addr_loopback;
                /* A link-local scope means nothing on loopback. */
                moved.sin6_scope_id = 0;
                return real(fd, (const struct sockaddr *)&moved, sizeof moved);
            }
        }
    }
    return real(fd, addr, len);
}
