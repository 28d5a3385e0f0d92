/*
 * kernel/net/socket.c: BSD sockets over lwIP's raw API.
 * Implements: POSIX.1-2017 (XSH 2.10 Sockets; socket(), accept(), recv(), ...)
 *             with Linux's errno in the same situations.
 * Try it:     make run APP=echo RUNFLAGS="--hostfwd 7007:7" and `nc 127.0.0.1 7007`
 *
 * lwIP runs with NO_SYS (no threads), so its own socket API is unusable; this
 * file is the socket layer instead. A socket is a struct sock behind a
 * descriptor from the same table as files (fd_install()). lwIP calls us back
 * only from inside the wait loop (kernel/wait.h: the netif's poll feeds it
 * frames and runs its timers): the callbacks queue what arrived (received
 * pbufs, accepted connections, datagrams, errors) on the sock, and every call
 * that blocks waits in wait_until() for a condition on the sock to hold.
 *
 * The lwIP rules this file keeps (lwIP 2.1.3, tcp.c and tcp_in.c):
 * - a receive callback always takes the pbuf: refused data would be retried
 *   only from the 250 ms timer;
 * - tcp_recved() for what the application copied out, so the window reopens;
 * - after the error callback the pcb is already freed: forget it, never close;
 * - before closing, tcp_arg(pcb, NULL) and every callback tolerates NULL;
 * - tcp_write() takes at most 0xffff bytes: loop, then one tcp_output().
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>

#include "lwip/ip_addr.h"
#include "lwip/netif.h"
#include "lwip/pbuf.h"
#include "lwip/priv/tcp_priv.h" /* TCP_KEEP*_DEFAULT */
#include "lwip/tcp.h"
#include "lwip/udp.h"

#include "../fd.h"
#include "../kernel.h"
#include "../wait.h"
#include "net.h"

/* Datagrams a UDP socket keeps before it drops new ones (Linux drops at its
 * receive buffer's size, too). */
#define UDP_QUEUE_MAX 256
/* How long a send waits for memory other connections hold. */
#define MEM_RETRY_NS (10 * 1000000ull)

enum sock_state {
	SS_NEW,        /* created or bound; a failed connect() comes back here */
	SS_LISTEN,     /* tcp: listen() */
	SS_CONNECTING, /* tcp: SYN sent */
	SS_CONNECTED,  /* tcp: established (it may be gone since: tcp == NULL) */
};

/* What arrived and was not read yet: one pbuf chain as lwIP handed it over
 * (chains are not joined: a pbuf's tot_len is 16 bits), and for a datagram
 * where it came from. */
struct rxq {
	struct rxq *next;
	struct pbuf *p;
	uint16_t off;  /* bytes of p already read (tcp) */
	uint32_t addr; /* udp: source address, network order */
	uint16_t port; /* udp: source port, host order */
};

struct sock {
	int type; /* SOCK_STREAM or SOCK_DGRAM */
	enum sock_state state;
	struct tcp_pcb *tcp; /* NULL once lwIP freed it (reset, timeout, closed) */
	struct udp_pcb *udp;
	int err;       /* a pending error (positive errno): SO_ERROR, or the next call's */
	bool nonblock; /* O_NONBLOCK on the descriptor */
	bool eof;      /* tcp: the peer's FIN (or the connection is gone) */
	bool rd_shut, wr_shut;
	bool nodelay;        /* TCP_NODELAY, kept for sockets accept() makes */
	bool abort_on_close; /* SO_LINGER on with a time of 0: close() resets */
	uint32_t peer_addr;  /* tcp from accept(): the peer, kept should lwIP free the pcb */
	uint16_t peer_port;
	struct rxq *rx_head, *rx_tail;
	size_t rx_bytes;   /* tcp: bytes queued; udp: datagrams queued */
	uint16_t queued;   /* tcp: segments queued when tcp_write() ran out */
	uint64_t rcvtimeo; /* SO_RCVTIMEO in ns, 0: none */
	uint64_t sndtimeo;
	/* A listening socket: connections lwIP established, oldest first. */
	struct sock *acc_head, *acc_tail, *acc_next;
	int acc_len, backlog;
};

static const struct fd_ops sock_ops;

/* ---- small helpers ---------------------------------------------------------------- */

static int set_errno(int neg)
{
	errno = -neg;
	return -1;
}

/* The socket behind fd: errno EBADF when fd is not open, ENOTSOCK when it
 * is a file. */
static struct sock *sock_get(int fd)
{
	errno = 0;
	struct sock *s = fd_ctx(fd, &sock_ops);
	if (!s && errno != EBADF)
		errno = ENOTSOCK;
	return s;
}

static int lwip_errno(err_t e)
{
	switch (e) {
	case ERR_OK:
		return 0;
	case ERR_MEM:
	case ERR_BUF:
		return ENOBUFS;
	case ERR_TIMEOUT:
		return ETIMEDOUT;
	case ERR_RTE:
		return ENETUNREACH;
	case ERR_INPROGRESS:
		return EINPROGRESS;
	case ERR_VAL:
	case ERR_ARG:
		return EINVAL;
	case ERR_WOULDBLOCK:
		return EAGAIN;
	case ERR_USE:
		return EADDRINUSE;
	case ERR_ALREADY:
		return EALREADY;
	case ERR_ISCONN:
		return EISCONN;
	case ERR_CONN:
		return ENOTCONN;
	case ERR_ABRT:
		return ECONNABORTED;
	case ERR_RST:
		return ECONNRESET;
	case ERR_CLSD:
		return ENOTCONN;
	default:
		return EIO;
	}
}

static uint64_t deadline(uint64_t timeo) { return timeo ? time_ns() + timeo : WAIT_FOREVER; }

/* An address from the caller: AF_INET only. */
static int addr_in(const struct sockaddr *sa, socklen_t len, ip_addr_t *ip, uint16_t *port)
{
	if (!sa || len < sizeof(struct sockaddr_in))
		return -EINVAL;
	const struct sockaddr_in *sin = (const struct sockaddr_in *)sa;
	if (sin->sin_family != AF_INET)
		return -EAFNOSUPPORT;
	ip_addr_set_ip4_u32_val(*ip, sin->sin_addr.s_addr);
	*port = ntohs(sin->sin_port);
	return 0;
}

/* An address to the caller, truncated to its buffer as POSIX says; *len
 * becomes the full size. */
static void addr_out(uint32_t addr, uint16_t port, struct sockaddr *sa, socklen_t *len)
{
	if (!sa || !len)
		return;
	struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = addr};
	memcpy(sa, &sin, *len < sizeof(sin) ? *len : sizeof(sin));
	*len = sizeof(sin);
}

static uint32_t ip4_of(const ip_addr_t *ip) { return IP_IS_V4(ip) ? ip4_addr_get_u32(ip_2_ip4(ip)) : 0; }

static void rxq_free_all(struct sock *s)
{
	while (s->rx_head) {
		struct rxq *q = s->rx_head;
		s->rx_head = q->next;
		pbuf_free(q->p);
		free(q);
	}
	s->rx_tail = NULL;
	s->rx_bytes = 0;
}

static void rxq_push(struct sock *s, struct rxq *q)
{
	q->next = NULL;
	if (s->rx_tail)
		s->rx_tail->next = q;
	else
		s->rx_head = q;
	s->rx_tail = q;
}

/* ---- lwIP's callbacks (run from the wait loop) ------------------------------------- */

static err_t tcp_recv_cb(void *arg, struct tcp_pcb *pcb, struct pbuf *p, err_t err)
{
	struct sock *s = arg;
	(void)err; /* lwIP 2.1.3 always passes ERR_OK */
	if (!p) {
		/* The peer's FIN: what is queued is still read first, then 0. */
		if (s)
			s->eof = true;
		return ERR_OK;
	}
	if (!s || s->rd_shut) {
		/* Nobody will read it: take it and open the window again. */
		tcp_recved(pcb, p->tot_len);
		pbuf_free(p);
		return ERR_OK;
	}
	struct rxq *q = malloc(sizeof(*q));
	if (!q)
		return ERR_MEM; /* lwIP keeps it and offers it again later */
	*q = (struct rxq){.p = p};
	rxq_push(s, q);
	s->rx_bytes += p->tot_len;
	return ERR_OK;
}

/* The pcb is gone (lwIP freed it before calling): remember why. */
static void tcp_err_cb(void *arg, err_t err)
{
	struct sock *s = arg;
	if (!s)
		return;
	s->tcp = NULL;
	s->eof = true;
	if (s->state == SS_CONNECTING) {
		/* A RST answering our SYN is a refusal; lwIP gives up on
		 * unanswered SYNs with ERR_ABRT from its slow timer. */
		s->err = err == ERR_RST ? ECONNREFUSED : err == ERR_ABRT ? ETIMEDOUT : lwip_errno(err);
		s->state = SS_NEW;
	} else if (err == ERR_CLSD) {
		/* Both sides closed cleanly after our shutdown(SHUT_WR): no error. */
	} else {
		/* ERR_ABRT from a timer: retransmissions or keep-alives unanswered. */
		s->err = err == ERR_ABRT ? ETIMEDOUT : lwip_errno(err);
	}
}

static err_t tcp_connected_cb(void *arg, struct tcp_pcb *pcb, err_t err)
{
	struct sock *s = arg;
	(void)pcb, (void)err; /* always ERR_OK in lwIP 2.1.3 */
	if (s)
		s->state = SS_CONNECTED;
	return ERR_OK;
}

static struct sock *sock_alloc(int type)
{
	struct sock *s = calloc(1, sizeof(*s));
	if (s)
		s->type = type;
	return s;
}

static void tcp_attach(struct sock *s, struct tcp_pcb *pcb)
{
	s->tcp = pcb;
	tcp_arg(pcb, s);
	tcp_recv(pcb, tcp_recv_cb);
	tcp_err(pcb, tcp_err_cb);
}

/* Forget pcb: no callback will reach a sock any more. */
static void tcp_detach(struct tcp_pcb *pcb)
{
	tcp_arg(pcb, NULL);
	tcp_recv(pcb, NULL); /* NULL: lwIP's own tcp_recv_null() takes data, closes on FIN */
	tcp_err(pcb, NULL);
}

/*
 * lwIP's LWIP_HOOK_TCP_INPACKET_PCB, for every TCP segment that found a pcb: a SYN for a
 * listener whose backlog is full of connections still in SYN_RCVD (a SYN flood: their
 * handshakes never complete) aborts the oldest of them, so that the new one, perhaps a real
 * client, gets its SYN-ACK now rather than once the flood's have timed out. Backlogs full of
 * completed connections the application has not accepted stay as they are: those SYNs are
 * dropped, as lwIP (and Linux) do. Always ERR_OK: the segment goes on to lwIP.
 */
signed char ringlet_tcp_inpacket(void *arg, const void *hdr)
{
	struct tcp_pcb_listen *lpcb = arg;
	const struct tcp_hdr *th = hdr;
	if (lpcb->state != LISTEN || (TCPH_FLAGS(th) & (TCP_SYN | TCP_ACK | TCP_RST)) != TCP_SYN ||
	    lpcb->accepts_pending < lpcb->backlog)
		return ERR_OK;
	struct tcp_pcb *oldest = NULL;
	for (struct tcp_pcb *p = tcp_active_pcbs; p; p = p->next)
		if (p->state == SYN_RCVD && p->listener == lpcb && (p->flags & TF_BACKLOGPEND) &&
		    (!oldest || (u32_t)(tcp_ticks - p->tmr) > (u32_t)(tcp_ticks - oldest->tmr)))
			oldest = p;
	if (oldest)
		tcp_abandon(oldest, 1); /* a reset, and tcp_backlog_accepted() frees its backlog slot */
	return ERR_OK;
}

/* A connection completed the handshake on a listening socket. */
static err_t tcp_accept_cb(void *arg, struct tcp_pcb *newpcb, err_t err)
{
	struct sock *ls = arg;
	/* newpcb NULL with ERR_MEM: lwIP could not allocate one; nothing to do. */
	if (!newpcb || err != ERR_OK)
		return ERR_VAL;
	if (!ls || ls->acc_len >= ls->backlog)
		return ERR_MEM; /* lwIP aborts newpcb */
	struct sock *s = sock_alloc(SOCK_STREAM);
	if (!s)
		return ERR_MEM;
	s->state = SS_CONNECTED;
	s->nodelay = ls->nodelay;
	s->rcvtimeo = ls->rcvtimeo;
	s->sndtimeo = ls->sndtimeo;
	s->peer_addr = ip4_of(&newpcb->remote_ip);
	s->peer_port = newpcb->remote_port;
	tcp_attach(s, newpcb);
	if (s->nodelay)
		tcp_nagle_disable(newpcb);
	/* It counts against the backlog until accept() takes it. */
	tcp_backlog_delayed(newpcb);
	if (ls->acc_tail)
		ls->acc_tail->acc_next = s;
	else
		ls->acc_head = s;
	ls->acc_tail = s;
	ls->acc_len++;
	return ERR_OK;
}

static void udp_recv_cb(void *arg, struct udp_pcb *pcb, struct pbuf *p, const ip_addr_t *addr, u16_t port)
{
	struct sock *s = arg;
	(void)pcb;
	if (!s || s->rd_shut || s->rx_bytes >= UDP_QUEUE_MAX || !IP_IS_V4(addr)) {
		pbuf_free(p);
		return;
	}
	struct rxq *q = malloc(sizeof(*q));
	if (!q) {
		pbuf_free(p);
		return;
	}
	*q = (struct rxq){.p = p, .addr = ip4_of(addr), .port = port};
	rxq_push(s, q);
	s->rx_bytes++;
}

/* ---- conditions the wait loop checks ------------------------------------------------ */

/* lwIP's own rule for "writable" (its netconn layer, api_msg.c). */
static bool tcp_writable(const struct sock *s)
{
	return s->tcp && tcp_sndbuf(s->tcp) > TCP_SNDLOWAT && tcp_sndqueuelen(s->tcp) < TCP_SNDQUEUELOWAT;
}

/* Room for at least one more tcp_write(). */
static bool tcp_room(const struct sock *s)
{
	return s->tcp && tcp_sndbuf(s->tcp) > 0 && tcp_sndqueuelen(s->tcp) < TCP_SND_QUEUELEN;
}

static bool cond_readable(void *arg)
{
	struct sock *s = arg;
	return s->rx_head || s->err || s->eof || s->rd_shut || (s->type == SOCK_STREAM && !s->tcp);
}

static bool cond_send_room(void *arg)
{
	struct sock *s = arg;
	return s->err || !s->tcp || s->state != SS_CONNECTED || tcp_writable(s);
}

/* After ERR_MEM: some of what was queued got acknowledged and freed. */
static bool cond_acked(void *arg)
{
	struct sock *s = arg;
	return s->err || !s->tcp || tcp_sndqueuelen(s->tcp) < s->queued;
}

static bool cond_gone(void *arg)
{
	struct sock *s = arg;
	return s->err || !s->tcp;
}

static bool cond_not_connecting(void *arg) { return ((struct sock *)arg)->state != SS_CONNECTING; }

static bool cond_acceptable(void *arg)
{
	struct sock *s = arg;
	return s->acc_head || s->state != SS_LISTEN;
}

/* A call that would block: a non-blocking socket gives lwIP one pass to
 * deliver what already arrived, then -EAGAIN; a blocking one waits. */
static int sock_wait(struct sock *s, bool (*cond)(void *), uint64_t timeo, bool nonblock)
{
	if (nonblock || s->nonblock) {
		wait_poll();
		return cond(s) ? 0 : -EAGAIN;
	}
	return wait_until(cond, s, deadline(timeo)) == 0 ? 0 : -EAGAIN;
}

/* ---- creating, naming, connecting ------------------------------------------------- */

static int sock_new_pcb(struct sock *s)
{
	if (s->type == SOCK_STREAM) {
		struct tcp_pcb *pcb = tcp_new();
		if (!pcb)
			return -ENOBUFS;
		tcp_attach(s, pcb);
		if (s->nodelay)
			tcp_nagle_disable(pcb);
	} else {
		s->udp = udp_new();
		if (!s->udp)
			return -ENOBUFS;
		udp_recv(s->udp, udp_recv_cb, s);
	}
	return 0;
}

int socket(int domain, int type, int protocol)
{
	int flags = type & (SOCK_NONBLOCK | SOCK_CLOEXEC);
	type &= ~(SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (domain != AF_INET)
		return set_errno(-EAFNOSUPPORT);
	/* Without a NIC kernel/net/net.c leaves lwIP unstarted (and there is
	 * no loopback interface): no socket could reach anything. This call
	 * is also what links net.c in, whose net_start() kernel/main.c calls
	 * through a weak reference. */
	if (!net_present())
		return set_errno(-ENETDOWN);
	if (type != SOCK_STREAM && type != SOCK_DGRAM)
		return set_errno(-EINVAL);
	if (protocol != 0 && protocol != (type == SOCK_STREAM ? IPPROTO_TCP : IPPROTO_UDP))
		return set_errno(-EPROTONOSUPPORT);
	struct sock *s = sock_alloc(type);
	if (!s)
		return set_errno(-ENOMEM);
	s->nonblock = flags & SOCK_NONBLOCK;
	int err = sock_new_pcb(s);
	int fd = err < 0 ? err : fd_install(&sock_ops, s, O_RDWR | (s->nonblock ? O_NONBLOCK : 0));
	if (fd < 0) {
		if (s->tcp) {
			tcp_detach(s->tcp);
			tcp_abort(s->tcp);
		}
		if (s->udp)
			udp_remove(s->udp);
		free(s);
		return set_errno(fd);
	}
	return fd;
}

/* An address bind() may take: any, or one of a NIC's (lwIP itself takes
 * any address; Linux says EADDRNOTAVAIL). There is no loopback interface. */
static bool local_addr(const ip_addr_t *ip)
{
	if (ip_addr_isany(ip))
		return true;
	struct netif *n;
	NETIF_FOREACH(n)
	{
		if (ip4_addr_cmp(netif_ip4_addr(n), ip_2_ip4(ip)))
			return true;
	}
	return false;
}

int bind(int fd, const struct sockaddr *addr, socklen_t len)
{
	struct sock *s = sock_get(fd);
	if (!s)
		return -1;
	ip_addr_t ip;
	uint16_t port;
	int err = addr_in(addr, len, &ip, &port);
	if (err < 0)
		return set_errno(err);
	if (!local_addr(&ip))
		return set_errno(-EADDRNOTAVAIL);
	if (s->type == SOCK_STREAM) {
		if (s->state != SS_NEW || !s->tcp || s->tcp->local_port)
			return set_errno(-EINVAL); /* already bound, as on Linux */
		err = -lwip_errno(tcp_bind(s->tcp, &ip, port));
	} else {
		if (s->udp->local_port)
			return set_errno(-EINVAL);
		err = -lwip_errno(udp_bind(s->udp, &ip, port));
	}
	return err < 0 ? set_errno(err) : 0;
}

int listen(int fd, int backlog)
{
	struct sock *s = sock_get(fd);
	if (!s)
		return -1;
	if (s->type != SOCK_STREAM)
		return set_errno(-EOPNOTSUPP);
	/* Linux takes 0 as 1 and caps at SOMAXCONN; lwIP counts in a u8. */
	backlog = backlog < 1 ? 1 : backlog > 255 ? 255 : backlog;
	if (s->state == SS_LISTEN) {
		s->backlog = backlog;
		tcp_backlog_set(s->tcp, backlog);
		return 0;
	}
	if (s->state != SS_NEW || !s->tcp)
		return set_errno(-EINVAL);
	/* Unbound: a free port, as Linux picks one. */
	if (!s->tcp->local_port) {
		int err = lwip_errno(tcp_bind(s->tcp, IP4_ADDR_ANY, 0));
		if (err)
			return set_errno(-err);
	}
	err_t e = ERR_OK;
	struct tcp_pcb *lpcb = tcp_listen_with_backlog_and_err(s->tcp, (u8_t)backlog, &e);
	if (!lpcb)
		return set_errno(-lwip_errno(e)); /* the old pcb is still ours */
	/* tcp_listen() freed the old pcb; a listening pcb has no err or recv
	 * callback. */
	s->tcp = lpcb;
	tcp_arg(lpcb, s);
	tcp_accept(lpcb, tcp_accept_cb);
	s->state = SS_LISTEN;
	s->backlog = backlog;
	return 0;
}

int accept4(int fd, struct sockaddr *addr, socklen_t *len, int flags)
{
	struct sock *ls = sock_get(fd);
	if (!ls)
		return -1;
	if (ls->type != SOCK_STREAM)
		return set_errno(-EOPNOTSUPP);
	if (ls->state != SS_LISTEN)
		return set_errno(-EINVAL);
	if (flags & ~(SOCK_NONBLOCK | SOCK_CLOEXEC))
		return set_errno(-EINVAL);
	int err = sock_wait(ls, cond_acceptable, ls->rcvtimeo, false);
	if (err < 0)
		return set_errno(err);
	struct sock *s = ls->acc_head;
	int nfd = fd_install(&sock_ops, s, O_RDWR | (flags & SOCK_NONBLOCK ? O_NONBLOCK : 0));
	if (nfd < 0)
		return set_errno(nfd); /* it stays queued for a later accept() */
	ls->acc_head = s->acc_next;
	if (!ls->acc_head)
		ls->acc_tail = NULL;
	ls->acc_len--;
	s->acc_next = NULL;
	s->nonblock = flags & SOCK_NONBLOCK;
	/* Reset while it waited, the pcb is gone: Linux hands the connection
	 * out all the same, and the first read reports ECONNRESET. */
	if (s->tcp)
		tcp_backlog_accepted(s->tcp);
	addr_out(s->peer_addr, s->peer_port, addr, len);
	return nfd;
}

int accept(int fd, struct sockaddr *addr, socklen_t *len) { return accept4(fd, addr, len, 0); }

int connect(int fd, const struct sockaddr *addr, socklen_t len)
{
	struct sock *s = sock_get(fd);
	if (!s)
		return -1;
	ip_addr_t ip;
	uint16_t port;
	if (s->type == SOCK_DGRAM) {
		/* AF_UNSPEC dissolves the association, as on Linux. */
		if (addr && len >= sizeof(sa_family_t) && addr->sa_family == AF_UNSPEC) {
			udp_disconnect(s->udp);
			return 0;
		}
		int err = addr_in(addr, len, &ip, &port);
		if (err == 0)
			err = -lwip_errno(udp_connect(s->udp, &ip, port));
		return err < 0 ? set_errno(err) : 0;
	}
	switch (s->state) {
	case SS_CONNECTING:
		return set_errno(-EALREADY);
	case SS_CONNECTED:
	case SS_LISTEN:
		return set_errno(-EISCONN);
	case SS_NEW:
		break;
	}
	int err = addr_in(addr, len, &ip, &port);
	if (err < 0)
		return set_errno(err);
	/* A failed connect() lost its pcb (lwIP freed it): start afresh. */
	if (!s->tcp && (err = sock_new_pcb(s)) < 0)
		return set_errno(err);
	s->err = 0;
	s->eof = false;
	err = -lwip_errno(tcp_connect(s->tcp, &ip, port, tcp_connected_cb));
	if (err < 0)
		return set_errno(err);
	s->state = SS_CONNECTING;
	/* Linux: a non-blocking connect, or a blocking one whose SO_SNDTIMEO
	 * passed, says EINPROGRESS and goes on in the background. */
	if (sock_wait(s, cond_not_connecting, s->sndtimeo, false) < 0)
		return set_errno(-EINPROGRESS);
	if (s->state == SS_CONNECTED)
		return 0;
	err = s->err ? s->err : ECONNREFUSED;
	s->err = 0;
	return set_errno(-err);
}

/* ---- data --------------------------------------------------------------------------- */

/* Takes the pending error, as the next call reports it once. */
static int take_err(struct sock *s)
{
	int err = s->err;
	s->err = 0;
	return -err;
}

/* Copies up to n queued bytes to buf; peek leaves them queued. The window
 * opens by what the application took. */
static size_t tcp_rx_copy(struct sock *s, char *buf, size_t n, bool peek)
{
	size_t got = 0;
	for (struct rxq *q = s->rx_head; q && got < n;) {
		size_t left = q->p->tot_len - q->off;
		size_t take = n - got < left ? n - got : left;
		pbuf_copy_partial(q->p, buf + got, (u16_t)take, q->off);
		got += take;
		if (peek) {
			q = q->next;
			continue;
		}
		s->rx_bytes -= take;
		if (take < left) {
			q->off = (uint16_t)(q->off + take);
			break;
		}
		s->rx_head = q->next;
		if (!s->rx_head)
			s->rx_tail = NULL;
		pbuf_free(q->p);
		free(q);
		q = s->rx_head;
	}
	if (!peek && s->tcp)
		for (size_t left = got; left;) {
			u16_t step = left > 0xffff ? 0xffff : (u16_t)left;
			tcp_recved(s->tcp, step);
			left -= step;
		}
	return got;
}

static ssize_t tcp_recv_data(struct sock *s, char *buf, size_t n, int flags)
{
	if (s->state == SS_NEW || s->state == SS_LISTEN)
		return -ENOTCONN;
	bool peek = flags & MSG_PEEK;
	size_t got = 0;
	for (;;) {
		if (peek)
			got = tcp_rx_copy(s, buf, n, true);
		else
			got += tcp_rx_copy(s, buf + got, n - got, false);
		if (got == n || (got && (!(flags & MSG_WAITALL) || peek)))
			return (ssize_t)got;
		if (s->err)
			return got ? (ssize_t)got : take_err(s);
		if (s->eof || s->rd_shut || !s->tcp)
			return (ssize_t)got; /* the end of the stream: 0 */
		int err = sock_wait(s, cond_readable, s->rcvtimeo, flags & MSG_DONTWAIT);
		if (err < 0)
			return got ? (ssize_t)got : err;
	}
}

static ssize_t tcp_send_data(struct sock *s, const char *buf, size_t n, int flags)
{
	if (s->state == SS_CONNECTING) {
		int err = sock_wait(s, cond_not_connecting, s->sndtimeo, flags & MSG_DONTWAIT);
		if (err < 0)
			return err;
	}
	if (s->err)
		return take_err(s);
	/* Linux says EPIPE, not ENOTCONN, for a socket never connected too. */
	if (s->state != SS_CONNECTED || s->wr_shut || !s->tcp)
		return -EPIPE;
	size_t sent = 0;
	while (sent < n) {
		if (!tcp_room(s)) {
			tcp_output(s->tcp);
			/* A blocking send goes on until all is queued (Linux). */
			int err = sock_wait(s, cond_send_room, s->sndtimeo, flags & MSG_DONTWAIT);
			if (err == 0 && !tcp_room(s))
				err = s->err ? take_err(s) : -EPIPE;
			if (err < 0)
				return sent ? (ssize_t)sent : err;
			continue;
		}
		size_t room = tcp_sndbuf(s->tcp);
		size_t chunk = n - sent < room ? n - sent : room;
		bool more = sent + chunk < n;
		err_t e =
		    tcp_write(s->tcp, buf + sent, (u16_t)chunk, TCP_WRITE_FLAG_COPY | (more ? TCP_WRITE_FLAG_MORE : 0));
		if (e == ERR_MEM) {
			/* Out of segments or memory, though the window had room:
			 * wait for acknowledgements of ours to free some, or, with
			 * nothing of ours in flight, a moment for others' to. */
			tcp_output(s->tcp);
			s->queued = tcp_sndqueuelen(s->tcp);
			int err = 0;
			if ((flags & MSG_DONTWAIT) || s->nonblock)
				err = -EAGAIN;
			else if (s->queued)
				err = sock_wait(s, cond_acked, s->sndtimeo, false);
			else
				wait_until(cond_gone, s, time_ns() + MEM_RETRY_NS);
			if (err < 0 || !s->tcp)
				return sent ? (ssize_t)sent : err < 0 ? err : s->err ? take_err(s) : -EPIPE;
			continue;
		}
		if (e != ERR_OK)
			return sent ? (ssize_t)sent : -lwip_errno(e);
		sent += chunk;
	}
	if (s->tcp)
		tcp_output(s->tcp);
	return (ssize_t)sent;
}

static ssize_t udp_recv_data(struct sock *s, char *buf, size_t n, int flags, struct sockaddr *from, socklen_t *fromlen)
{
	while (!s->rx_head) {
		if (s->err)
			return take_err(s);
		if (s->rd_shut)
			return 0;
		int err = sock_wait(s, cond_readable, s->rcvtimeo, flags & MSG_DONTWAIT);
		if (err < 0)
			return err;
	}
	struct rxq *q = s->rx_head;
	size_t len = q->p->tot_len;
	size_t take = n < len ? n : len;
	pbuf_copy_partial(q->p, buf, (u16_t)take, 0);
	addr_out(q->addr, q->port, from, fromlen);
	if (!(flags & MSG_PEEK)) {
		s->rx_head = q->next;
		if (!s->rx_head)
			s->rx_tail = NULL;
		s->rx_bytes--;
		pbuf_free(q->p);
		free(q);
	}
	/* The rest of a datagram longer than buf is lost; MSG_TRUNC asks for
	 * its real length. */
	return (ssize_t)(flags & MSG_TRUNC ? len : take);
}

/* How often a UDP sender that never blocks polls the devices (udp_send_data()). */
#define SEND_POLL_NS 20000ull
static uint64_t send_polled_ns;

/* How many frames an n-byte UDP datagram takes on nif: one, or its IP fragments (each
 * carrying a multiple of 8 bytes of the UDP header and data). */
static unsigned udp_frames(struct netif *nif, const ip_addr_t *dst, size_t n)
{
	unsigned mtu = IP_IS_V6(dst) ? netif_mtu6(nif) : nif->mtu;
	unsigned hdr = IP_IS_V6(dst) ? 40 : 20;
	if (mtu <= hdr + 8 + 8 || n + 8 + hdr <= mtu)
		return 1;
	unsigned per = (mtu - hdr - (IP_IS_V6(dst) ? 8 : 0)) & ~7u;
	return (unsigned)((n + 8 + per - 1) / per);
}

static ssize_t udp_send_data(struct sock *s, const char *buf, size_t n, int flags, const struct sockaddr *to,
                             socklen_t tolen)
{
	ip_addr_t ip;
	uint16_t port = 0;
	if (to) {
		int err = addr_in(to, tolen, &ip, &port);
		if (err < 0)
			return err;
	} else if (!(s->udp->flags & UDP_FLAGS_CONNECTED)) {
		return -EDESTADDRREQ;
	}
	if (s->wr_shut)
		return -EPIPE;
	/* 65535 - the IPv4 header - the UDP header. */
	if (n > 65507)
		return -EMSGSIZE;
	/* A sender that never blocks never enters the wait loop: poll the devices here, or
	 * the ARP reply that lets its datagrams out (and every other frame) waits until it
	 * stops. lwIP meanwhile keeps only the last few datagrams for the unresolved
	 * address and drops the rest while udp_send() says ERR_OK. Every SEND_POLL_NS, not
	 * every datagram: the poll cost a fifth of a 64-byte send. */
	uint64_t now = time_ns();
	if (now - send_polled_ns >= SEND_POLL_NS) {
		send_polled_ns = now;
		wait_poll();
	}
	/* The NIC's transmit ring full: wait for room as Linux waits for send buffer space (or
	 * say EAGAIN), rather than hand lwIP frames the driver can only drop. */
	const ip_addr_t *dst = to ? &ip : &s->udp->remote_ip;
	struct netif *out = ip_route(&s->udp->local_ip, dst);
	if (out) {
		unsigned frames = udp_frames(out, dst, n);
		if (net_tx_free(out) < frames) {
			if (s->nonblock || (flags & MSG_DONTWAIT))
				return -EAGAIN;
			if (net_tx_wait(out, frames, deadline(s->sndtimeo)) < 0)
				return -EAGAIN;
		}
	}
	struct pbuf *p = pbuf_alloc(PBUF_TRANSPORT, (u16_t)n, PBUF_RAM);
	if (!p)
		return -ENOBUFS;
	pbuf_take(p, buf, (u16_t)n);
	err_t e = to ? udp_sendto(s->udp, p, &ip, port) : udp_send(s->udp, p);
	pbuf_free(p);
	return e == ERR_OK ? (ssize_t)n : -lwip_errno(e);
}

ssize_t recvfrom(int fd, void *buf, size_t n, int flags, struct sockaddr *from, socklen_t *fromlen)
{
	struct sock *s = sock_get(fd);
	if (!s)
		return -1;
	if (flags & MSG_OOB)
		return set_errno(-EOPNOTSUPP);
	ssize_t r;
	if (s->type == SOCK_STREAM) {
		r = tcp_recv_data(s, buf, n, flags);
		if (r >= 0 && s->tcp && from && fromlen)
			addr_out(ip4_of(&s->tcp->remote_ip), s->tcp->remote_port, from, fromlen);
	} else {
		r = udp_recv_data(s, buf, n, flags, from, fromlen);
	}
	return r < 0 ? set_errno((int)r) : r;
}

ssize_t recv(int fd, void *buf, size_t n, int flags) { return recvfrom(fd, buf, n, flags, NULL, NULL); }

ssize_t sendto(int fd, const void *buf, size_t n, int flags, const struct sockaddr *to, socklen_t tolen)
{
	struct sock *s = sock_get(fd);
	if (!s)
		return -1;
	if (flags & MSG_OOB)
		return set_errno(-EOPNOTSUPP);
	/* A stream socket ignores the address, as Linux does once connected. */
	ssize_t r =
	    s->type == SOCK_STREAM ? tcp_send_data(s, buf, n, flags) : udp_send_data(s, buf, n, flags, to, tolen);
	return r < 0 ? set_errno((int)r) : r;
}

ssize_t send(int fd, const void *buf, size_t n, int flags) { return sendto(fd, buf, n, flags, NULL, 0); }

int shutdown(int fd, int how)
{
	struct sock *s = sock_get(fd);
	if (!s)
		return -1;
	if (how != SHUT_RD && how != SHUT_WR && how != SHUT_RDWR)
		return set_errno(-EINVAL);
	if (s->type == SOCK_STREAM ? s->state != SS_CONNECTED : !(s->udp->flags & UDP_FLAGS_CONNECTED))
		return set_errno(-ENOTCONN);
	if (how != SHUT_WR) {
		/* Queued data is dropped; the window opens again for it. */
		if (s->type == SOCK_STREAM && s->tcp && s->rx_bytes)
			for (size_t left = s->rx_bytes; left;) {
				u16_t step = left > 0xffff ? 0xffff : (u16_t)left;
				tcp_recved(s->tcp, step);
				left -= step;
			}
		rxq_free_all(s);
		s->rd_shut = true;
	}
	if (how != SHUT_RD && !s->wr_shut) {
		s->wr_shut = true;
		/* Our FIN; the receive side stays open in lwIP (shut_rx 0),
		 * which would otherwise free the pcb under us. */
		if (s->type == SOCK_STREAM && s->tcp) {
			err_t e = tcp_shutdown(s->tcp, 0, 1);
			if (e != ERR_OK)
				return set_errno(-lwip_errno(e));
		}
	}
	return 0;
}

/* ---- options and names -------------------------------------------------------------- */

static int opt_int(const void *val, socklen_t len, int *out)
{
	if (!val || len < sizeof(int))
		return -EINVAL;
	memcpy(out, val, sizeof(int));
	return 0;
}

static int opt_timeval(const void *val, socklen_t len, uint64_t *out)
{
	struct timeval tv;
	if (!val || len < sizeof(tv))
		return -EINVAL;
	memcpy(&tv, val, sizeof(tv));
	if (tv.tv_sec < 0 || tv.tv_usec < 0 || tv.tv_usec >= 1000000)
		return -EDOM; /* Linux's answer */
	*out = (uint64_t)tv.tv_sec * NSEC_PER_SEC + (uint64_t)tv.tv_usec * 1000;
	return 0;
}

/* The pcb's socket options (SOF_*), wherever it lives. */
static u8_t *so_options(struct sock *s)
{
	if (s->type == SOCK_STREAM)
		return s->tcp ? &s->tcp->so_options : NULL;
	return &s->udp->so_options;
}

int setsockopt(int fd, int level, int name, const void *val, socklen_t len)
{
	struct sock *s = sock_get(fd);
	if (!s)
		return -1;
	int v = 0, err = 0;
	if (level == SOL_SOCKET) {
		switch (name) {
		case SO_RCVTIMEO:
			return (err = opt_timeval(val, len, &s->rcvtimeo)) < 0 ? set_errno(err) : 0;
		case SO_SNDTIMEO:
			return (err = opt_timeval(val, len, &s->sndtimeo)) < 0 ? set_errno(err) : 0;
		case SO_REUSEADDR:
		case SO_KEEPALIVE:
		case SO_BROADCAST: {
			if ((err = opt_int(val, len, &v)) < 0)
				return set_errno(err);
			if (name == SO_KEEPALIVE && s->type != SOCK_STREAM)
				return 0; /* Linux accepts and ignores it */
			u8_t flag = name == SO_REUSEADDR   ? SOF_REUSEADDR
			            : name == SO_KEEPALIVE ? SOF_KEEPALIVE
			                                   : SOF_BROADCAST;
			u8_t *opts = so_options(s);
			if (opts)
				*opts = (u8_t)(v ? *opts | flag : *opts & ~flag);
			return 0;
		}
		case SO_LINGER: {
			struct linger l;
			if (!val || len < sizeof(l))
				return set_errno(-EINVAL);
			memcpy(&l, val, sizeof(l));
			/* On with 0: close() drops what is queued and resets the
			 * connection. XXX: on with a time, close() does not wait
			 * for the data to go out: lwIP sends it in the background. */
			s->abort_on_close = l.l_onoff && l.l_linger == 0;
			return 0;
		}
		case SO_SNDBUF:
		case SO_RCVBUF:
			/* XXX: accepted, not honoured: lwIP's buffers are sized
			 * once for all (lwipopts.h). */
			return opt_int(val, len, &v) < 0 ? set_errno(-EINVAL) : 0;
		default:
			return set_errno(-ENOPROTOOPT);
		}
	}
	if (level == IPPROTO_TCP && s->type == SOCK_STREAM) {
		if ((err = opt_int(val, len, &v)) < 0)
			return set_errno(err);
		struct tcp_pcb *pcb = s->state == SS_LISTEN ? NULL : s->tcp;
		switch (name) {
		case TCP_NODELAY:
			s->nodelay = v != 0;
			if (pcb && v)
				tcp_nagle_disable(pcb);
			else if (pcb)
				tcp_nagle_enable(pcb);
			return 0;
		case TCP_KEEPIDLE:
		case TCP_KEEPINTVL:
		case TCP_KEEPCNT:
			if (v < 1 || v > 32767)
				return set_errno(-EINVAL);
			if (pcb) {
				if (name == TCP_KEEPIDLE)
					pcb->keep_idle = (u32_t)v * 1000;
				else if (name == TCP_KEEPINTVL)
					pcb->keep_intvl = (u32_t)v * 1000;
				else
					pcb->keep_cnt = (u32_t)v;
			}
			return 0;
		default:
			return set_errno(-ENOPROTOOPT);
		}
	}
	return set_errno(-ENOPROTOOPT);
}

static int put_int(void *val, socklen_t *len, int v)
{
	if (!val || !len || *len < sizeof(int))
		return set_errno(-EINVAL);
	memcpy(val, &v, sizeof(v));
	*len = sizeof(v);
	return 0;
}

static int put_timeval(void *val, socklen_t *len, uint64_t ns)
{
	struct timeval tv = {.tv_sec = (time_t)(ns / NSEC_PER_SEC), .tv_usec = (suseconds_t)(ns % NSEC_PER_SEC / 1000)};
	if (!val || !len || *len < sizeof(tv))
		return set_errno(-EINVAL);
	memcpy(val, &tv, sizeof(tv));
	*len = sizeof(tv);
	return 0;
}

int getsockopt(int fd, int level, int name, void *val, socklen_t *len)
{
	struct sock *s = sock_get(fd);
	if (!s)
		return -1;
	u8_t *opts = so_options(s);
	if (level == SOL_SOCKET) {
		switch (name) {
		case SO_ERROR:
			return put_int(val, len, -take_err(s));
		case SO_TYPE:
			return put_int(val, len, s->type);
		case SO_ACCEPTCONN:
			return put_int(val, len, s->state == SS_LISTEN);
		case SO_REUSEADDR:
			return put_int(val, len, opts && (*opts & SOF_REUSEADDR));
		case SO_KEEPALIVE:
			return put_int(val, len, opts && (*opts & SOF_KEEPALIVE));
		case SO_BROADCAST:
			return put_int(val, len, opts && (*opts & SOF_BROADCAST));
		case SO_SNDBUF:
			return put_int(val, len, s->type == SOCK_STREAM ? TCP_SND_BUF : 65535);
		case SO_RCVBUF:
			return put_int(val, len, s->type == SOCK_STREAM ? TCP_WND : 65535);
		case SO_LINGER: {
			struct linger l = {s->abort_on_close, 0};
			if (!val || !len || *len < sizeof(l))
				return set_errno(-EINVAL);
			memcpy(val, &l, sizeof(l));
			*len = sizeof(l);
			return 0;
		}
		case SO_RCVTIMEO:
			return put_timeval(val, len, s->rcvtimeo);
		case SO_SNDTIMEO:
			return put_timeval(val, len, s->sndtimeo);
		default:
			return set_errno(-ENOPROTOOPT);
		}
	}
	if (level == IPPROTO_TCP && s->type == SOCK_STREAM) {
		struct tcp_pcb *pcb = s->state == SS_LISTEN ? NULL : s->tcp;
		switch (name) {
		case TCP_NODELAY:
			return put_int(val, len, s->nodelay);
		case TCP_KEEPIDLE:
			return put_int(val, len, (int)((pcb ? pcb->keep_idle : TCP_KEEPIDLE_DEFAULT) / 1000));
		case TCP_KEEPINTVL:
			return put_int(val, len, (int)((pcb ? pcb->keep_intvl : TCP_KEEPINTVL_DEFAULT) / 1000));
		case TCP_KEEPCNT:
			return put_int(val, len, (int)(pcb ? pcb->keep_cnt : TCP_KEEPCNT_DEFAULT));
		default:
			return set_errno(-ENOPROTOOPT);
		}
	}
	return set_errno(-ENOPROTOOPT);
}

int getsockname(int fd, struct sockaddr *addr, socklen_t *len)
{
	struct sock *s = sock_get(fd);
	if (!s)
		return -1;
	if (!addr || !len)
		return set_errno(-EFAULT);
	if (s->type == SOCK_STREAM)
		addr_out(s->tcp ? ip4_of(&s->tcp->local_ip) : 0, s->tcp ? s->tcp->local_port : 0, addr, len);
	else
		addr_out(ip4_of(&s->udp->local_ip), s->udp->local_port, addr, len);
	return 0;
}

int getpeername(int fd, struct sockaddr *addr, socklen_t *len)
{
	struct sock *s = sock_get(fd);
	if (!s)
		return -1;
	if (!addr || !len)
		return set_errno(-EFAULT);
	if (s->type == SOCK_STREAM) {
		if (s->state != SS_CONNECTED || !s->tcp)
			return set_errno(-ENOTCONN);
		addr_out(ip4_of(&s->tcp->remote_ip), s->tcp->remote_port, addr, len);
	} else {
		if (!(s->udp->flags & UDP_FLAGS_CONNECTED))
			return set_errno(-ENOTCONN);
		addr_out(ip4_of(&s->udp->remote_ip), s->udp->remote_port, addr, len);
	}
	return 0;
}

/* ---- the descriptor's operations ------------------------------------------------------ */

static ssize_t sock_read(void *ctx, void *buf, size_t n, uint64_t off)
{
	struct sock *s = ctx;
	(void)off;
	return s->type == SOCK_STREAM ? tcp_recv_data(s, buf, n, 0) : udp_recv_data(s, buf, n, 0, NULL, NULL);
}

static ssize_t sock_write(void *ctx, const void *buf, size_t n, uint64_t off)
{
	struct sock *s = ctx;
	(void)off;
	return s->type == SOCK_STREAM ? tcp_send_data(s, buf, n, 0) : udp_send_data(s, buf, n, 0, NULL, 0);
}

static void tcp_close_pcb(struct tcp_pcb *pcb)
{
	tcp_detach(pcb);
	/* tcp_close() sends a RST instead of a FIN when data we received was
	 * never read (never tcp_recved()): what Linux does too. It fails only
	 * for lack of memory; then abort. */
	if (tcp_close(pcb) != ERR_OK)
		tcp_abort(pcb);
}

static int sock_close(void *ctx)
{
	struct sock *s = ctx;
	if (s->type == SOCK_STREAM) {
		if (s->state == SS_LISTEN) {
			tcp_arg(s->tcp, NULL);
			tcp_accept(s->tcp, NULL);
			tcp_close(s->tcp); /* always succeeds for a listening pcb */
			/* Connections nobody accepted: reset, as Linux does. */
			while (s->acc_head) {
				struct sock *c = s->acc_head;
				s->acc_head = c->acc_next;
				if (c->tcp) {
					tcp_detach(c->tcp);
					tcp_abort(c->tcp);
				}
				rxq_free_all(c);
				free(c);
			}
		} else if (s->tcp && s->abort_on_close) {
			tcp_detach(s->tcp);
			tcp_abort(s->tcp); /* a RST, as Linux sends for SO_LINGER 0 */
		} else if (s->tcp) {
			tcp_close_pcb(s->tcp);
		}
	} else {
		udp_remove(s->udp);
	}
	rxq_free_all(s);
	free(s);
	return 0;
}

static short sock_poll(void *ctx)
{
	struct sock *s = ctx;
	short mask = 0;
	if (s->type == SOCK_DGRAM) {
		/* Writable when the NIC the datagrams go out on (any NIC, unconnected) has room. */
		struct netif *out = NULL;
		if (s->udp && (s->udp->flags & UDP_FLAGS_CONNECTED))
			out = ip_route(&s->udp->local_ip, &s->udp->remote_ip);
		if (net_tx_writable(out))
			mask = POLLOUT;
		if (s->rx_head || s->rd_shut)
			mask |= POLLIN;
		if (s->err)
			mask |= POLLERR;
		return mask;
	}
	switch (s->state) {
	case SS_LISTEN:
		return s->acc_head ? POLLIN : 0;
	case SS_CONNECTING:
		return 0;
	case SS_NEW:
		/* Never connected, or a connect() that failed (Linux's masks). */
		return s->err ? POLLOUT | POLLERR | POLLHUP : POLLOUT | POLLHUP;
	case SS_CONNECTED:
		break;
	}
	if (cond_readable(s))
		mask |= POLLIN;
	/* Gone: a write fails at once, which is "will not block" too. */
	if (!s->tcp || (!s->wr_shut && tcp_writable(s)))
		mask |= POLLOUT;
	if (s->err)
		mask |= POLLERR;
	if (!s->tcp || (s->eof && s->wr_shut))
		mask |= POLLHUP;
	return mask;
}

static void sock_set_flags(void *ctx, int flags) { ((struct sock *)ctx)->nonblock = flags & O_NONBLOCK; }

static const struct fd_ops sock_ops = {
    .read = sock_read,
    .write = sock_write,
    .close = sock_close,
    .poll = sock_poll,
    .set_flags = sock_set_flags,
};
