/*
 * Benchmark targets for bench/run and bench/soak: one single-threaded epoll process serving
 * every target address of 127.0.0.0/8 on a few ports. Listeners bind 0.0.0.0 with
 * SO_BINDTODEVICE "lo" (so nothing arrives from another interface), and a connection whose
 * local address is not in 127.0.0.0/8 is closed at once: only loopback targets exist.
 *
 *   --tcp PORT      TCP accept server: accepts and closes (a DNS + TCP connect probe)
 *   --flap PORT     the same, but its listener can be switched off (connections refused)
 *   --http PORT     HTTP: "GET /delay/<ms>" answers 200 after <ms> milliseconds (measured from
 *                   the end of the request head, timed with a timerfd, not epoll's ms ticks);
 *                   the body is "ok\n" plus <ms> dots, so the content length a prober reports
 *                   (blackbox: probe_http_content_length) tells which delay it asked for;
 *                   in mode 503 it answers 503 after the delay, in mode hang it never answers
 *   --hang PORT     accepts and holds every connection until the peer closes it
 *   --control PORT  on 127.0.0.1 only: GET /stats (JSON counters), /mode/fast|503|hang,
 *                   /flap/on|off, /reset-lag (the lag counters: how late answers went out
 *                   after their due time, and the longest epoll batch, i.e. how long a request
 *                   head could wait to be read: the harness's own share of a latency error)
 *
 * Build: cc -O2 -o targets targets.c
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

enum kind { L_TCP, L_FLAP, L_HTTP, L_HANG, L_CTRL, C_HTTP, C_HANG, C_CTRL, TIMER, CLOSED };
enum mode { M_FAST, M_503, M_HANG };
#define MAX_DELAY_BODY 10000 /* a 200's body is 3 + min(delay, this) bytes */
static const char *mode_names[] = {"fast", "503", "hang"};

struct item {
    int kind;
    int fd;
};

struct conn {
    struct item it;
    int len;
    int waiting;       /* in the timer heap */
    int heap_idx;
    int status;        /* what it will answer */
    long delay_ms;
    uint64_t deadline; /* ns, CLOCK_MONOTONIC */
    char buf[2048];
};

static int ep;
static enum mode mode = M_FAST;
static struct item l_tcp = {L_TCP, -1}, l_flap = {L_FLAP, -1}, l_http = {L_HTTP, -1},
                   l_hang = {L_HANG, -1}, l_ctrl = {L_CTRL, -1}, timer = {TIMER, -1};
static int flap_port, flap_on = 1;

/* how late answers went out after their due time (the timer's and the loop's lag), in ns */
static unsigned long long late_sum_ns, late_max_ns, late_n;
/* the longest time one epoll batch took: how long a request head could wait to be read */
static unsigned long long batch_max_ns;
static unsigned long long n_tcp, n_flap, n_http_req, n_http_200, n_http_503, n_http_held,
    n_hang, n_refused_nonloop, n_http_open, n_hang_open, n_http_closed_early;

/* closed during this epoll batch: freed after it, as later events may still point at them */
static struct conn **grave;
static int grave_len, grave_cap;

static struct conn **heap;
static int heap_len, heap_cap;

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void die(const char *what) {
    perror(what);
    exit(1);
}

static void heap_swap(int a, int b) {
    struct conn *t = heap[a];
    heap[a] = heap[b];
    heap[b] = t;
    heap[a]->heap_idx = a;
    heap[b]->heap_idx = b;
}

static void heap_up(int i) {
    while (i > 0) {
        int p = (i - 1) / 2;
        if (heap[p]->deadline <= heap[i]->deadline) break;
        heap_swap(p, i);
        i = p;
    }
}

static void heap_down(int i) {
    for (;;) {
        int l = 2 * i + 1, r = l + 1, m = i;
        if (l < heap_len && heap[l]->deadline < heap[m]->deadline) m = l;
        if (r < heap_len && heap[r]->deadline < heap[m]->deadline) m = r;
        if (m == i) break;
        heap_swap(m, i);
        i = m;
    }
}

static void heap_push(struct conn *c) {
    if (heap_len == heap_cap) {
        heap_cap = heap_cap ? heap_cap * 2 : 1024;
        heap = realloc(heap, sizeof(*heap) * (size_t)heap_cap);
        if (!heap) die("realloc");
    }
    heap[heap_len] = c;
    c->heap_idx = heap_len++;
    c->waiting = 1;
    heap_up(c->heap_idx);
}

static void heap_remove(struct conn *c) {
    int i = c->heap_idx;
    c->waiting = 0;
    heap_len--;
    if (i != heap_len) {
        heap[i] = heap[heap_len];
        heap[i]->heap_idx = i;
        heap_down(i);
        heap_up(i);
    }
}

static void arm_timer(void) {
    struct itimerspec its;
    memset(&its, 0, sizeof(its));
    if (heap_len > 0) {
        uint64_t d = heap[0]->deadline;
        if (d == 0) d = 1;
        its.it_value.tv_sec = (time_t)(d / 1000000000ull);
        its.it_value.tv_nsec = (long)(d % 1000000000ull);
    }
    if (timerfd_settime(timer.fd, TFD_TIMER_ABSTIME, &its, NULL) < 0) die("timerfd_settime");
}

static int listen_on(int port, int loopback_only_ip) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) die("socket");
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    struct sockaddr_in a;
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)port);
    if (loopback_only_ip) {
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    } else {
        /* every address of 127.0.0.0/8, and only through the loopback device */
        a.sin_addr.s_addr = htonl(INADDR_ANY);
        if (setsockopt(fd, SOL_SOCKET, SO_BINDTODEVICE, "lo", 3) < 0) die("SO_BINDTODEVICE lo");
    }
    if (bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
        fprintf(stderr, "targets: bind port %d: %s\n", port, strerror(errno));
        exit(1);
    }
    if (listen(fd, 65535) < 0) die("listen");
    return fd;
}

static void watch(struct item *it, uint32_t events) {
    struct epoll_event ev;
    ev.events = events;
    ev.data.ptr = it;
    if (epoll_ctl(ep, EPOLL_CTL_ADD, it->fd, &ev) < 0) die("epoll_ctl");
}

static int loopback_local(int fd) {
    struct sockaddr_in a;
    socklen_t len = sizeof(a);
    if (getsockname(fd, (struct sockaddr *)&a, &len) < 0) return 0;
    return (ntohl(a.sin_addr.s_addr) >> 24) == 127;
}

static void close_conn(struct conn *c) {
    if (c->waiting) heap_remove(c);
    if (c->it.kind == C_HTTP) n_http_open--;
    if (c->it.kind == C_HANG) n_hang_open--;
    close(c->it.fd); /* also leaves epoll */
    c->it.kind = CLOSED;
    c->it.fd = -1;
    if (grave_len == grave_cap) {
        grave_cap = grave_cap ? grave_cap * 2 : 1024;
        grave = realloc(grave, sizeof(*grave) * (size_t)grave_cap);
        if (!grave) die("realloc");
    }
    grave[grave_len++] = c;
}

static void respond(struct conn *c) {
    static const char unavailable[] =
        "HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\nContent-Length: 12\r\n"
        "Connection: close\r\n\r\nunavailable\n";
    static char ok[256 + 3 + MAX_DELAY_BODY];
    const char *r = unavailable;
    size_t n = sizeof(unavailable) - 1;
    if (c->status == 200) {
        /* the body is "ok\n" and <ms> more bytes: a prober's content length tells the delay */
        int head = snprintf(ok, 256,
                            "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %ld\r\n"
                            "Connection: close\r\n\r\nok\n",
                            3 + c->delay_ms);
        memset(ok + head, '.', (size_t)c->delay_ms);
        r = ok;
        n = (size_t)head + (size_t)c->delay_ms;
    }
    ssize_t w = write(c->it.fd, r, n);
    (void)w;
    if (c->status == 200) n_http_200++; else n_http_503++;
    /* The client has sent its whole request: close, leaving TIME_WAIT on our side as a server
     * that answers "Connection: close" does. */
    close_conn(c);
}

static void accept_all(struct item *l) {
    for (;;) {
        int fd = accept4(l->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED) continue;
            return; /* EAGAIN, or EMFILE: try again on the next wakeup */
        }
        if (!loopback_local(fd) && l->kind != L_CTRL) {
            n_refused_nonloop++;
            close(fd);
            continue;
        }
        switch (l->kind) {
        case L_TCP:
            n_tcp++;
            close(fd);
            break;
        case L_FLAP:
            n_flap++;
            close(fd);
            break;
        default: {
            struct conn *c = calloc(1, sizeof(*c));
            if (!c) die("calloc");
            c->it.fd = fd;
            c->it.kind = l->kind == L_HTTP ? C_HTTP : l->kind == L_HANG ? C_HANG : C_CTRL;
            if (c->it.kind == C_HTTP) n_http_open++;
            if (c->it.kind == C_HANG) { n_hang++; n_hang_open++; }
            watch(&c->it, EPOLLIN | EPOLLRDHUP);
        }
        }
    }
}

static void set_flap(int on) {
    if (on && l_flap.fd < 0) {
        l_flap.fd = listen_on(flap_port, 0);
        watch(&l_flap, EPOLLIN);
    } else if (!on && l_flap.fd >= 0) {
        close(l_flap.fd);
        l_flap.fd = -1;
    }
    flap_on = on;
}

static void control(struct conn *c) {
    char body[2048];
    int code = 200;
    if (strncmp(c->buf, "GET /stats", 10) == 0) {
        snprintf(body, sizeof(body),
                 "{\"tcp_accepts\": %llu, \"flap_accepts\": %llu, \"http_requests\": %llu, "
                 "\"http_200\": %llu, \"http_503\": %llu, \"http_held\": %llu, "
                 "\"http_closed_early\": %llu, \"http_open\": %llu, \"hang_accepts\": %llu, "
                 "\"hang_open\": %llu, \"nonloopback_closed\": %llu, \"waiting\": %d, "
                 "\"late_n\": %llu, \"late_sum_us\": %llu, \"late_max_us\": %llu, "
                 "\"batch_max_us\": %llu, "
                 "\"mode\": \"%s\", \"flap\": %s}\n",
                 n_tcp, n_flap, n_http_req, n_http_200, n_http_503, n_http_held,
                 n_http_closed_early, n_http_open, n_hang, n_hang_open, n_refused_nonloop,
                 heap_len, late_n, late_sum_ns / 1000, late_max_ns / 1000,
                 batch_max_ns / 1000, mode_names[mode],
                 flap_on ? "true" : "false");
    } else if (strncmp(c->buf, "GET /reset-lag", 14) == 0) {
        late_sum_ns = late_max_ns = late_n = batch_max_ns = 0;
        snprintf(body, sizeof(body), "lag counters reset\n");
    } else if (strncmp(c->buf, "GET /mode/fast", 14) == 0) {
        mode = M_FAST;
        snprintf(body, sizeof(body), "mode fast\n");
    } else if (strncmp(c->buf, "GET /mode/503", 13) == 0) {
        mode = M_503;
        snprintf(body, sizeof(body), "mode 503\n");
    } else if (strncmp(c->buf, "GET /mode/hang", 14) == 0) {
        mode = M_HANG;
        snprintf(body, sizeof(body), "mode hang\n");
    } else if (strncmp(c->buf, "GET /flap/on", 12) == 0) {
        set_flap(1);
        snprintf(body, sizeof(body), "flap on\n");
    } else if (strncmp(c->buf, "GET /flap/off", 13) == 0) {
        set_flap(0);
        snprintf(body, sizeof(body), "flap off\n");
    } else {
        code = 404;
        snprintf(body, sizeof(body), "not found\n");
    }
    char out[4096];
    int n = snprintf(out, sizeof(out),
                     "HTTP/1.1 %d X\r\nContent-Type: text/plain\r\nContent-Length: %zu\r\n"
                     "Connection: close\r\n\r\n%s",
                     code, strlen(body), body);
    ssize_t w = write(c->it.fd, out, (size_t)n);
    (void)w;
    close_conn(c);
}

static void readable(struct conn *c, uint32_t events) {
    for (;;) {
        char scratch[2048];
        int hanging = c->it.kind == C_HANG || c->waiting || c->status == -1;
        char *dst = hanging ? scratch : c->buf + c->len;
        size_t room = hanging ? sizeof(scratch) : sizeof(c->buf) - 1 - (size_t)c->len;
        if (room == 0) { close_conn(c); return; }
        ssize_t n = read(c->it.fd, dst, room);
        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
            if (c->it.kind == C_HTTP && (c->waiting || c->status == -1)) n_http_closed_early++;
            close_conn(c);
            return;
        }
        if (n < 0) {
            if (errno == EINTR) continue;
            break;
        }
        if (hanging) continue;
        c->len += (int)n;
        c->buf[c->len] = 0;
        if (!strstr(c->buf, "\r\n\r\n")) continue;
        if (c->it.kind == C_CTRL) { control(c); return; }
        /* C_HTTP: the request head is complete */
        n_http_req++;
        if (mode == M_HANG) {
            n_http_held++;
            c->status = -1; /* never answers; read and discard until the peer goes */
            continue;
        }
        long ms = 0;
        char *p = strstr(c->buf, "/delay/");
        if (p) ms = strtol(p + 7, NULL, 10);
        if (ms < 0) ms = 0;
        c->delay_ms = ms > MAX_DELAY_BODY ? MAX_DELAY_BODY : ms;
        c->status = mode == M_503 ? 503 : 200;
        if (ms == 0) { respond(c); return; }
        c->deadline = now_ns() + (uint64_t)ms * 1000000ull;
        heap_push(c);
        if (c->heap_idx == 0) arm_timer();
    }
    if (events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR)) {
        if (c->it.kind == C_HTTP && (c->waiting || c->status == -1)) n_http_closed_early++;
        close_conn(c);
    }
}

static void fire_timers(void) {
    uint64_t expirations;
    ssize_t r = read(timer.fd, &expirations, sizeof(expirations));
    (void)r;
    uint64_t now = now_ns();
    while (heap_len > 0 && heap[0]->deadline <= now) {
        struct conn *c = heap[0];
        uint64_t late = now_ns() - c->deadline;
        late_sum_ns += late;
        late_n++;
        if (late > late_max_ns) late_max_ns = late;
        heap_remove(c);
        respond(c);
    }
    arm_timer();
}

int main(int argc, char **argv) {
    int tcp_port = 0, http_port = 0, hang_port = 0, ctrl_port = 0;
    for (int i = 1; i + 1 < argc; i += 2) {
        int v = atoi(argv[i + 1]);
        if (!strcmp(argv[i], "--tcp")) tcp_port = v;
        else if (!strcmp(argv[i], "--flap")) flap_port = v;
        else if (!strcmp(argv[i], "--http")) http_port = v;
        else if (!strcmp(argv[i], "--hang")) hang_port = v;
        else if (!strcmp(argv[i], "--control")) ctrl_port = v;
        else if (!strcmp(argv[i], "--mode")) {
            mode = !strcmp(argv[i + 1], "503") ? M_503 : !strcmp(argv[i + 1], "hang") ? M_HANG : M_FAST;
        } else {
            fprintf(stderr, "targets: unknown option %s\n", argv[i]);
            return 2;
        }
    }
    signal(SIGPIPE, SIG_IGN);
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    ep = epoll_create1(EPOLL_CLOEXEC);
    if (ep < 0) die("epoll_create1");
    timer.fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    if (timer.fd < 0) die("timerfd_create");
    watch(&timer, EPOLLIN);
    if (tcp_port) { l_tcp.fd = listen_on(tcp_port, 0); watch(&l_tcp, EPOLLIN); }
    if (flap_port) set_flap(1);
    if (http_port) { l_http.fd = listen_on(http_port, 0); watch(&l_http, EPOLLIN); }
    if (hang_port) { l_hang.fd = listen_on(hang_port, 0); watch(&l_hang, EPOLLIN); }
    if (ctrl_port) { l_ctrl.fd = listen_on(ctrl_port, 1); watch(&l_ctrl, EPOLLIN); }
    fprintf(stderr, "targets: ready (pid %d)\n", (int)getpid());

    struct epoll_event evs[512];
    for (;;) {
        int n = epoll_wait(ep, evs, 512, -1);
        if (n < 0) {
            if (errno == EINTR) continue;
            die("epoll_wait");
        }
        uint64_t batch_start = now_ns();
        for (int i = 0; i < n; i++) {
            struct item *it = evs[i].data.ptr;
            switch (it->kind) {
            case L_TCP: case L_FLAP: case L_HTTP: case L_HANG: case L_CTRL:
                if (it->fd >= 0) accept_all(it);
                break;
            case TIMER:
                fire_timers();
                break;
            case CLOSED:
                break;
            default:
                readable((struct conn *)it, evs[i].events);
            }
        }
        for (int i = 0; i < grave_len; i++) free(grave[i]);
        grave_len = 0;
        uint64_t took = now_ns() - batch_start;
        if (took > batch_max_ns) batch_max_ns = took;
    }
}
