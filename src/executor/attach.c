/* The monitor's attach socket, DIR/attach.sock (docs/containers.md, "Attach socket").
 * Every message either way is a frame: u8 stream, u32 length (big endian), data.
 *   client -> monitor: 0 stdin data (length 0: close the container's stdin; ignored for a tty),
 *                      3 resize (u16 rows, u16 columns, big endian: TIOCSWINSZ on the pty master).
 *   monitor -> client: 1 stdout, 2 stderr (a tty's output is stdout), as it is read; no history.
 * Any number of clients; stdin from all of them goes to the same place. A client that does not read its
 * output holds the container's output back (as a blocking docker attach does) rather than losing it.
 * Mechanics only: whether stdin closes when a client leaves is the daemon's choice (it sends the empty frame). */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <termios.h>
#include <unistd.h>
#include "executor.h"

#define MAX_CLIENTS 32
#define FRAME_HEADER 5

struct client {
    int fd;
    unsigned char hdr[FRAME_HEADER];
    size_t hdr_len;             /* header bytes read of the frame being received */
    uint32_t left;              /* payload bytes of that frame still to come */
    unsigned char resize[4];
    size_t resize_len;
    char *out;                  /* unsent output (malloc'd), out_len bytes from out_off */
    size_t out_len, out_off;
    int gone;                   /* output failed (the peer closed): nothing more is sent; dropped at its EOF */
};

static struct client clients[MAX_CLIENTS];
static int n_clients, listen_fd = -1, console_rx = -1, master = -1, stdin_fd = -1;
static int want_stdin, close_pending, have_size;
static struct winsize size;
static char in[4096];           /* stdin read from clients, not yet written to the container */
static size_t in_len, in_off;

/* console_fd: the socket the pty master arrives on (-t), or -1; stdin_w: the write end of the container's stdin
 * pipe (-i without -t), or -1; open_stdin: whether clients' stdin reaches the container at all. */
int attach_init(int dir_fd, int console_fd, int stdin_w, int open_stdin)
{
    char path[64];
    struct sockaddr_un addr = { .sun_family = AF_UNIX };
    console_rx = console_fd;
    stdin_fd = stdin_w;
    want_stdin = open_stdin;
    if (stdin_fd >= 0)
        fcntl(stdin_fd, F_SETFL, O_NONBLOCK);
    /* Bound through /proc/self/fd: DIR may be longer than sun_path allows. */
    unlinkat(dir_fd, "attach.sock", 0);
    snprintf(path, sizeof path, "/proc/self/fd/%d/attach.sock", dir_fd);
    snprintf(addr.sun_path, sizeof addr.sun_path, "%s", path);
    listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (listen_fd < 0 || bind(listen_fd, (struct sockaddr *)&addr, sizeof addr) < 0 || listen(listen_fd, 16) < 0)
        return -1;
    fchmodat(dir_fd, "attach.sock", 0600, 0);
    return listen_fd;
}

int attach_master(void) { return master; }

/* Nonzero while a client has output it did not take yet: the monitor then stops reading the container. */
int attach_blocked(void)
{
    for (int i = 0; i < n_clients; i++)
        if (clients[i].out_len)
            return 1;
    return 0;
}

static void apply_size(void)
{
    if (master >= 0 && have_size)
        ioctl(master, TIOCSWINSZ, &size);
}

static void receive_master(void)
{
    char name[64];
    union { char buf[CMSG_SPACE(sizeof(int))]; struct cmsghdr align; } u;
    struct iovec iov = { .iov_base = name, .iov_len = sizeof name };
    struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf, .msg_controllen = sizeof u.buf };
    ssize_t n = recvmsg(console_rx, &msg, MSG_CMSG_CLOEXEC);
    struct cmsghdr *c = n > 0 ? CMSG_FIRSTHDR(&msg) : NULL;
    if (c && c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
        memcpy(&master, CMSG_DATA(c), sizeof(int));
        fcntl(master, F_SETFL, O_NONBLOCK);
        apply_size();
    }
    if (n > 0 && master < 0)
        return;
    close(console_rx);           /* one master per container; EOF: the executor failed before sending it */
    console_rx = -1;
}

/* Writes what fits without blocking; keeps the rest for later. Returns -1 if the client is gone. */
static int send_to(struct client *c, const char *data, size_t n)
{
    size_t done = 0;
    if (!c->out_len)
        while (done < n) {
            ssize_t w = send(c->fd, data + done, n - done, MSG_NOSIGNAL | MSG_DONTWAIT);
            if (w < 0 && errno == EINTR)
                continue;
            if (w < 0 && errno == EAGAIN)
                break;
            if (w <= 0)
                return -1;
            done += (size_t)w;
        }
    if (done == n)
        return 0;
    char *grown = realloc(c->out, c->out_len + n - done);
    if (!grown)
        return -1;
    if (c->out_off && !c->out_len)
        c->out_off = 0;
    c->out = grown;
    memcpy(c->out + c->out_off + c->out_len, data + done, n - done);
    c->out_len += n - done;
    return 0;
}

void attach_broadcast(int stream, const char *data, size_t n)
{
    unsigned char hdr[FRAME_HEADER] = { (unsigned char)stream, (unsigned char)(n >> 24), (unsigned char)(n >> 16),
                                        (unsigned char)(n >> 8), (unsigned char)n };
    /* A client that closed right after sending (a resize on a connection of its own) is not dropped here: what it
     * sent is still to be read, and its EOF drops it then. */
    for (int i = 0; i < n_clients; i++)
        if (!clients[i].gone && (send_to(&clients[i], (char *)hdr, sizeof hdr) < 0 || send_to(&clients[i], data, n) < 0)) {
            clients[i].gone = 1;
            clients[i].out_len = clients[i].out_off = 0;
        }
}

static int stdin_target(void) { return !want_stdin ? -1 : master >= 0 ? master : stdin_fd; }

/* Frames from a client: stdin bytes are copied to `in`, which is empty when this is called. Returns -1 at EOF. */
static int read_client(struct client *c)
{
    char buf[sizeof in];
    ssize_t n = recv(c->fd, buf, sizeof buf, MSG_DONTWAIT);
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return 0;
    if (n <= 0)
        return -1;
    for (ssize_t i = 0; i < n;) {
        if (c->hdr_len < FRAME_HEADER) {
            c->hdr[c->hdr_len++] = (unsigned char)buf[i++];
            if (c->hdr_len < FRAME_HEADER)
                continue;
            c->left = (uint32_t)c->hdr[1] << 24 | (uint32_t)c->hdr[2] << 16 | (uint32_t)c->hdr[3] << 8 | c->hdr[4];
            c->resize_len = 0;
            if (c->hdr[0] == 0 && c->left == 0 && master < 0 && stdin_fd >= 0)
                close_pending = 1;   /* end of input, once what came before it is written */
        }
        size_t take = (size_t)(n - i) < c->left ? (size_t)(n - i) : c->left;
        if (c->hdr[0] == 0 && stdin_target() >= 0 && !close_pending) {
            memcpy(in + in_len, buf + i, take);
            in_len += take;
        } else if (c->hdr[0] == 3) {
            for (size_t k = 0; k < take && c->resize_len < sizeof c->resize; k++)
                c->resize[c->resize_len++] = (unsigned char)buf[i + k];
            if (c->resize_len == sizeof c->resize && c->left == take) {
                size.ws_row = (unsigned short)(c->resize[0] << 8 | c->resize[1]);
                size.ws_col = (unsigned short)(c->resize[2] << 8 | c->resize[3]);
                have_size = 1;
                apply_size();
            }
        }
        i += (ssize_t)take;
        c->left -= (uint32_t)take;
        if (c->left == 0)
            c->hdr_len = 0;
    }
    return 0;
}

static void write_stdin(void)
{
    while (in_off < in_len) {
        ssize_t w = write(stdin_target(), in + in_off, in_len - in_off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0 && errno == EAGAIN)
            return;
        if (w <= 0) {
            in_off = in_len;    /* the container closed its stdin: what it would not read is dropped */
            break;
        }
        in_off += (size_t)w;
    }
    in_len = in_off = 0;
    if (close_pending && stdin_fd >= 0) {
        close(stdin_fd);        /* the container reads EOF */
        stdin_fd = -1;
    }
}

/* Appends the fds to poll to p (room for MAX_CLIENTS + 3); returns how many. */
int attach_fill(struct pollfd *p)
{
    int n = 0;
    int stdin_busy = in_len > 0 && stdin_target() >= 0;
    if (listen_fd >= 0)
        p[n++] = (struct pollfd){ listen_fd, POLLIN, 0 };
    if (console_rx >= 0)
        p[n++] = (struct pollfd){ console_rx, POLLIN, 0 };
    if (stdin_busy)
        p[n++] = (struct pollfd){ stdin_target(), POLLOUT, 0 };
    for (int i = 0; i < n_clients; i++)
        p[n++] = (struct pollfd){ clients[i].fd, (short)((stdin_busy ? 0 : POLLIN) | (clients[i].out_len ? POLLOUT : 0)), 0 };
    return n;
}

static void flush_client(struct client *c)
{
    while (c->out_len) {
        ssize_t w = send(c->fd, c->out + c->out_off, c->out_len, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0 && errno == EAGAIN)
            return;
        if (w <= 0) {
            c->out_len = 0;     /* gone: dropped by the caller on its next error */
            return;
        }
        c->out_off += (size_t)w;
        c->out_len -= (size_t)w;
    }
    c->out_off = 0;
}

/* After poll: the results for the fds attach_fill gave (in the same order). */
void attach_handle(struct pollfd *p, int n)
{
    int k = 0;
    int stdin_busy = in_len > 0 && stdin_target() >= 0;
    if (listen_fd >= 0 && k < n && (p[k++].revents & POLLIN))
        for (int fd; n_clients < MAX_CLIENTS && (fd = accept4(listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0;)
            clients[n_clients++] = (struct client){ .fd = fd };
    if (console_rx >= 0 && k < n && p[k++].revents)
        receive_master();
    if (stdin_busy && k < n && p[k++].revents)
        write_stdin();
    /* Clients accepted just now were not polled: they start at the next round. */
    int polled = n - k;
    for (int i = 0; i < polled && i < n_clients; i++) {
        short r = p[k + i].revents;
        if (r & POLLOUT)
            flush_client(&clients[i]);
        if (!(r & (POLLIN | POLLHUP | POLLERR)))
            continue;
        if (!(p[k + i].events & POLLIN) || read_client(&clients[i]) < 0)
            clients[i].fd = -clients[i].fd - 1;     /* gone (a hang-up while stdin was busy drops its input) */
        else if (in_len || close_pending)
            write_stdin();
    }
    for (int i = n_clients - 1; i >= 0; i--)
        if (clients[i].fd < 0) {
            close(-clients[i].fd - 1);
            free(clients[i].out);
            clients[i] = clients[--n_clients];
        }
}

/* At the end: up to timeout_ms to hand every client the output it has not taken yet. */
void attach_finish(int timeout_ms)
{
    struct pollfd p[MAX_CLIENTS];
    while (attach_blocked()) {
        int n = 0;
        for (int i = 0; i < n_clients; i++)
            p[n++] = (struct pollfd){ clients[i].fd, POLLOUT, 0 };
        if (poll(p, (nfds_t)n, timeout_ms) <= 0)
            break;
        for (int i = 0; i < n; i++)
            if (p[i].revents & (POLLOUT | POLLERR | POLLHUP))
                flush_client(&clients[i]);
    }
}
