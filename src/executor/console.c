/* The container's terminal: a pty whose master goes to the console socket, whose slave becomes stdio. */
#include <errno.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/statfs.h>
#include <termios.h>
#include <unistd.h>
#include "executor.h"

static void send_master(int sock, int master, const char *name)
{
    union { char buf[CMSG_SPACE(sizeof(int))]; struct cmsghdr align; } u;
    struct iovec iov = { .iov_base = (void *)name, .iov_len = strlen(name) };
    struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf, .msg_controllen = sizeof u.buf };
    struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(c), &master, sizeof(int));
    if (sendmsg(sock, &msg, MSG_NOSIGNAL) < 0)
        fail("console", "sendmsg");
}

void setup_console(struct plan *p)
{
    char name[32], src[32], target[32];
    struct statfs st;
    unsigned int n;
    if (p->console_fd < 0)
        return;
    /* CVE-2025-52565: a /dev/ptmx planted by the image must not hand us some other file. */
    int master = open("/dev/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (master < 0 || fstatfs(master, &st) < 0)
        fail("console", "/dev/ptmx");
    if (st.f_type != DEVPTS_SUPER_MAGIC)
        fail_err("console", EXDEV, "/dev/ptmx");
    if (unlockpt(master) < 0 || ioctl(master, TIOCGPTN, &n) < 0)
        fail("console", "/dev/ptmx");
    int slave = ioctl(master, TIOCGPTPEER, O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (slave < 0)
        fail("console", "TIOCGPTPEER");
    snprintf(name, sizeof name, "/dev/pts/%u", n);
    send_master(p->console_fd, master, name);
    close(master);
    close(p->console_fd);

    if (p->mode == MODE_INIT) {
        int root = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
        int fd = root < 0 ? -1 : open_in_root(root, "/dev/console", IN_ROOT_MKFILE);
        if (fd < 0 || mount(fdpath(slave, src), fdpath(fd, target), NULL, MS_BIND, NULL) < 0)
            fail("console", "/dev/console");
        close(fd);
        close(root);
    }
    if (setsid() < 0 && errno != EPERM)   /* EPERM: already a session leader (R_SETSID) */
        fail("console", "setsid");
    if (ioctl(slave, TIOCSCTTY, 0) < 0)
        fail("console", "TIOCSCTTY");
    for (int i = 0; i < 3; i++)
        if (dup2(slave, i) < 0)
            fail("console", "dup2");
    if (slave > 2)
        close(slave);
}
