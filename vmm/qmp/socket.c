/*
 * socket: the monitor's listening unix socket: the address a user gives
 * ("unix:PATH" or PATH), a stale socket file left by a crashed VM replaced
 * only when nothing listens on it, mode 0600. Used by server.c on the main
 * thread.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "vmm/lib/log.h"
#include "vmm/qmp/server.h"

/* Removes a socket file nobody listens on; refuses a live one or a non-socket. */
static int qmp_clear_stale(const char *path, char *err, size_t errlen)
{
	struct stat st;
	if (lstat(path, &st) < 0)
		return errno == ENOENT ? 0 : -errno;
	if (!S_ISSOCK(st.st_mode)) {
		snprintf(err, errlen, "qmp: %s exists and is not a socket; choose another path", path);
		return -EEXIST;
	}
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	memcpy(sa.sun_path, path, strlen(path) + 1);
	int ret = connect(fd, (struct sockaddr *)&sa, sizeof(sa));
	int saved = errno;
	close(fd);
	if (ret == 0) {
		snprintf(err, errlen, "qmp: %s is in use by another running process", path);
		return -EADDRINUSE;
	}
	if (saved != ECONNREFUSED) {
		snprintf(err, errlen, "qmp: cannot probe %s: %s", path, strerror(saved));
		return -saved;
	}
	log_info("qmp", "removing stale socket %s", path);
	if (unlink(path) < 0 && errno != ENOENT) {
		snprintf(err, errlen, "qmp: cannot remove stale socket %s: %s", path, strerror(errno));
		return -errno;
	}
	return 0;
}

int qmp_socket_parse(const char *spec, struct sockaddr_un *sa, char *err, size_t errlen)
{
	const char *path = spec;

	if (strncmp(spec, "unix:", 5) == 0) {
		path = spec + 5;
	} else if (strchr(spec, ':') && !strchr(spec, '/')) {
		snprintf(err, errlen, "qmp: unsupported address '%s'; use unix:PATH", spec);
		return -EINVAL;
	}
	if (!*path || strlen(path) >= sizeof(sa->sun_path)) {
		snprintf(err, errlen, "qmp: socket path '%s' is empty or longer than %zu bytes",
			 path, sizeof(sa->sun_path) - 1);
		return -ENAMETOOLONG;
	}
	*sa = (struct sockaddr_un){ .sun_family = AF_UNIX };
	memcpy(sa->sun_path, path, strlen(path) + 1);
	return 0;
}

int qmp_socket_listen(const struct sockaddr_un *sa, int *fd, char *err, size_t errlen)
{
	const char *path = sa->sun_path;
	int ret = qmp_clear_stale(path, err, errlen);

	if (ret < 0) {
		if (!err[0])
			snprintf(err, errlen, "qmp: %s: %s", path, strerror(-ret));
		return ret;
	}
	*fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (*fd < 0) {
		snprintf(err, errlen, "qmp: socket: %s", strerror(errno));
		return -errno;
	}
	/*
	 * The monitor can stop the VM and read guest state: owner only. The umask
	 * covers the window between bind() and chmod(); nobody can connect before
	 * listen() anyway.
	 */
	mode_t old = umask(0177);
	ret = bind(*fd, (const struct sockaddr *)sa, sizeof(*sa));
	int saved = errno;
	umask(old);
	if (ret < 0) {
		snprintf(err, errlen, "qmp: cannot bind %s: %s", path, strerror(saved));
		return -saved;
	}
	if (chmod(path, 0600) < 0 || listen(*fd, 16) < 0) {
		ret = -errno;
		snprintf(err, errlen, "qmp: cannot listen on %s: %s", path, strerror(errno));
		unlink(path);
		return ret;
	}
	return 0;
}
