// Linux's readiness API, which the Glibc module does not expose: the daemon's socket loop uses it.
#include <sys/epoll.h>
#include <sys/eventfd.h>

// accept4(2), which <sys/socket.h> declares only under _GNU_SOURCE: the loop accepts connections
// already non-blocking and close-on-exec, in one call. (<sys/socket.h> itself stays with the Glibc
// module; socklen_t is an unsigned int on Linux.)
struct sockaddr;
extern int accept4(int fd, struct sockaddr *address, unsigned int *length, int flags);
