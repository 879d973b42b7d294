// Linux's readiness API, which the Glibc module does not expose: the daemon's socket loop uses it.
#include <sys/epoll.h>
#include <sys/eventfd.h>
