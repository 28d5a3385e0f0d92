/*
 * <netinet/tcp.h>: TCP options for setsockopt(fd, IPPROTO_TCP, ...), with
 * Linux's values.
 */
#ifndef _NETINET_TCP_H
#define _NETINET_TCP_H

#define TCP_NODELAY   1 /* int: send at once, no Nagle */
#define TCP_MAXSEG    2
#define TCP_KEEPIDLE  4 /* int seconds before the first keep-alive probe */
#define TCP_KEEPINTVL 5 /* int seconds between probes */
#define TCP_KEEPCNT   6 /* int probes before the connection is dropped */

#endif
