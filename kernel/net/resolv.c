/*
 * kernel/net/resolv.c: getaddrinfo() over lwIP's DNS client (the text
 * forms of addresses are kernel/net/inet.c's).
 * Implements: POSIX.1-2017 XSH getaddrinfo(), freeaddrinfo(), gai_strerror().
 * Try it:     getaddrinfo("example.org", "80", ...) in an app booted with --net user-open
 *             (restrict=on would keep QEMU's DNS at 10.0.2.3 from reaching out)
 *
 * Sockets are IPv4 only (kernel/net/socket.c), so getaddrinfo() answers with
 * AF_INET addresses: numeric ones directly, "localhost" as 127.0.0.1, other
 * names through DNS (the server DHCP or the dns= option gave), waiting in the
 * wait loop for lwIP's answer.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lwip/dns.h"
#include "lwip/ip_addr.h"

#include "../kernel.h"
#include "../wait.h"
#include "net.h"

/* How long getaddrinfo() waits for lwIP's DNS client, which retries on its
 * own and calls back with "not found" when it gives up. */
#define DNS_WAIT_NS (20 * NSEC_PER_SEC)

/* ---- getaddrinfo ---------------------------------------------------------------- */

/* The services a small program asks for by name. */
static const struct {
	const char *name;
	uint16_t port;
} services[] = {
    {"echo", 7},    {"ftp", 21},  {"ssh", 22},  {"telnet", 23}, {"smtp", 25},
    {"domain", 53}, {"http", 80}, {"ntp", 123}, {"https", 443}, {"http-alt", 8080},
};

/* A finished DNS query. Lives on the heap: should getaddrinfo() give up
 * first, lwIP still calls back into it later. */
struct dns_query {
	bool done;
	bool found;
	bool abandoned;
	uint32_t addr; /* network order */
};

static void dns_found(const char *name, const ip_addr_t *ip, void *arg)
{
	struct dns_query *q = arg;
	(void)name;
	if (q->abandoned) {
		free(q);
		return;
	}
	q->done = true;
	if (ip && IP_IS_V4(ip)) {
		q->found = true;
		q->addr = ip4_addr_get_u32(ip_2_ip4(ip));
	}
}

static bool dns_done(void *arg) { return ((struct dns_query *)arg)->done; }

/* A name to an IPv4 address: 0 or an EAI_ code. */
static int resolve(const char *node, uint32_t *addr)
{
	uint8_t a[4];
	if (inet_pton(AF_INET, node, a) == 1) {
		memcpy(addr, a, 4);
		return 0;
	}
	if (strcasecmp(node, "localhost") == 0) {
		*addr = htonl(INADDR_LOOPBACK);
		return 0;
	}
	if (strlen(node) > 255)
		return EAI_NONAME;
	/* No NIC: lwIP (its DNS client too) was never started. */
	if (!net_present())
		return EAI_FAIL;
	struct dns_query *q = calloc(1, sizeof(*q));
	if (!q)
		return EAI_MEMORY;
	ip_addr_t ip;
	err_t e = dns_gethostbyname_addrtype(node, &ip, dns_found, q, LWIP_DNS_ADDRTYPE_IPV4);
	if (e == ERR_OK) {
		free(q);
		*addr = ip4_addr_get_u32(ip_2_ip4(&ip));
		return 0;
	}
	if (e != ERR_INPROGRESS) {
		/* ERR_ARG: no DNS server, or a name lwIP will not ask for. */
		free(q);
		return e == ERR_ARG ? EAI_FAIL : EAI_AGAIN;
	}
	if (wait_until(dns_done, q, time_ns() + DNS_WAIT_NS) < 0) {
		q->abandoned = true;
		return EAI_AGAIN;
	}
	int err = q->found ? 0 : EAI_NONAME;
	*addr = q->addr;
	free(q);
	return err;
}

static int service_port(const char *service, int flags, uint16_t *port)
{
	*port = 0;
	if (!service)
		return 0;
	char *end;
	long v = strtol(service, &end, 10);
	if (*service && *end == '\0') {
		if (v < 0 || v > 65535)
			return EAI_SERVICE;
		*port = (uint16_t)v;
		return 0;
	}
	if (flags & AI_NUMERICSERV)
		return EAI_NONAME;
	for (size_t i = 0; i < sizeof(services) / sizeof(services[0]); i++)
		if (strcmp(services[i].name, service) == 0) {
			*port = services[i].port;
			return 0;
		}
	return EAI_SERVICE;
}

/* One answer: the addrinfo, its sockaddr_in and its canonical name in one
 * allocation, so that freeaddrinfo() frees each with one free(). */
static struct addrinfo *answer(int socktype, uint32_t addr, uint16_t port, const char *canon)
{
	size_t clen = canon ? strlen(canon) + 1 : 0;
	struct addrinfo *ai = calloc(1, sizeof(*ai) + sizeof(struct sockaddr_in) + clen);
	if (!ai)
		return NULL;
	struct sockaddr_in *sin = (struct sockaddr_in *)(ai + 1);
	sin->sin_family = AF_INET;
	sin->sin_port = htons(port);
	sin->sin_addr.s_addr = addr;
	ai->ai_family = AF_INET;
	ai->ai_socktype = socktype;
	ai->ai_protocol = socktype == SOCK_STREAM ? IPPROTO_TCP : IPPROTO_UDP;
	ai->ai_addrlen = sizeof(*sin);
	ai->ai_addr = (struct sockaddr *)sin;
	if (canon) {
		ai->ai_canonname = (char *)(sin + 1);
		memcpy(ai->ai_canonname, canon, clen);
	}
	return ai;
}

int getaddrinfo(const char *node, const char *service, const struct addrinfo *hints, struct addrinfo **res)
{
	int flags = hints ? hints->ai_flags : 0;
	int family = hints ? hints->ai_family : AF_UNSPEC;
	int socktype = hints ? hints->ai_socktype : 0;
	int protocol = hints ? hints->ai_protocol : 0;
	*res = NULL;
	if (!node && !service)
		return EAI_NONAME;
	if (flags &
	    ~(AI_PASSIVE | AI_CANONNAME | AI_NUMERICHOST | AI_V4MAPPED | AI_ALL | AI_ADDRCONFIG | AI_NUMERICSERV))
		return EAI_BADFLAGS;
	if ((flags & AI_CANONNAME) && !node)
		return EAI_BADFLAGS;
	if (family != AF_UNSPEC && family != AF_INET)
		return EAI_FAMILY;
	if (socktype != 0 && socktype != SOCK_STREAM && socktype != SOCK_DGRAM)
		return EAI_SOCKTYPE;
	if (protocol != 0 && protocol != IPPROTO_TCP && protocol != IPPROTO_UDP)
		return EAI_SOCKTYPE;
	uint16_t port;
	int err = service_port(service, flags, &port);
	if (err)
		return err;
	uint32_t addr;
	if (!node) {
		addr = htonl(flags & AI_PASSIVE ? INADDR_ANY : INADDR_LOOPBACK);
	} else if (flags & AI_NUMERICHOST) {
		uint8_t a[4];
		if (inet_pton(AF_INET, node, a) != 1)
			return EAI_NONAME;
		memcpy(&addr, a, 4);
	} else if ((err = resolve(node, &addr)) != 0) {
		return err;
	}
	/* No type asked for: one answer per type, TCP first (as glibc). */
	const char *canon = flags & AI_CANONNAME ? node : NULL;
	struct addrinfo **tail = res;
	for (int t = SOCK_STREAM; t <= SOCK_DGRAM; t++) {
		int proto = t == SOCK_STREAM ? IPPROTO_TCP : IPPROTO_UDP;
		if ((socktype && socktype != t) || (protocol && protocol != proto))
			continue;
		struct addrinfo *ai = answer(t, addr, port, canon);
		if (!ai) {
			freeaddrinfo(*res);
			*res = NULL;
			return EAI_MEMORY;
		}
		canon = NULL; /* only the first answer carries it */
		*tail = ai;
		tail = &ai->ai_next;
	}
	return *res ? 0 : EAI_SOCKTYPE;
}

void freeaddrinfo(struct addrinfo *ai)
{
	while (ai) {
		struct addrinfo *next = ai->ai_next;
		free(ai);
		ai = next;
	}
}

const char *gai_strerror(int err)
{
	switch (err) {
	case 0:
		return "Success";
	case EAI_BADFLAGS:
		return "Bad value for ai_flags";
	case EAI_NONAME:
		return "Name or service not known";
	case EAI_AGAIN:
		return "Temporary failure in name resolution";
	case EAI_FAIL:
		return "Non-recoverable failure in name resolution";
	case EAI_FAMILY:
		return "ai_family not supported";
	case EAI_SOCKTYPE:
		return "ai_socktype not supported";
	case EAI_SERVICE:
		return "Servname not supported for ai_socktype";
	case EAI_MEMORY:
		return "Memory allocation failure";
	case EAI_SYSTEM:
		return "System error";
	case EAI_OVERFLOW:
		return "Argument buffer overflow";
	default:
		return "Unknown error";
	}
}
