/*
 * httpd: a static-file HTTP/1.1 server for many clients at once, with poll().
 * Implements: RFC 9110 (semantics: GET, HEAD, conditional requests, Range)
 *             and RFC 9112 (HTTP/1.1: persistent connections, pipelining).
 * Plain POSIX: the same files build for Ringlet and for Linux
 * (gcc -O2 -Wall -o httpd apps/httpd/main.c apps/httpd/http.c).
 *
 *	httpd [--port N] [--root DIR] [--quiet]     defaults: 80, /www
 *
 * Try it:  make run   (the guide from docs/, on a tar disk, at http://127.0.0.1:8080/)
 *
 * On Ringlet, when nothing is mounted at DIR, httpd mounts the first disk
 * there (a tar archive, <ringlet/fs.h>), so a guest given a tar disk and no
 * options serves it. Each request gets one log line on the console in the
 * common log format. /ringlet/status (?json) shows what the kernel knows.
 * With bench=httpd on the command line it speaks the shared bench harness's
 * protocol (BENCH-READY, BENCH-SERVING, runs until BENCH-STOP, BENCH-RESULT).
 *
 * Small files are kept in memory after their first request (the disk is a
 * read-only archive; on Linux a change of size or mtime drops the copy) and
 * sent from there; large ones are read from the file in 64 KiB pieces
 * straight into the buffer that send() takes.
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "http.h"

#ifndef __ringlet__
#define MAX_CONNS 1024
#else
#include <ringlet/balloon.h>
#include <ringlet/blk.h>
#include <ringlet/fs.h>
#include <ringlet/net.h>
#include <ringlet/random.h>
#define MAX_CONNS 200 /* descriptors: 512, minus files being sent */
#endif

#define IN_SIZE        (HTTP_MAX_HEADERS + 1)
#define CHUNK          65536
#define HEAD_MAX       1024
#define IDLE_NS        (15ull * 1000000000ull) /* a keep-alive connection with nothing to say */
#define HEAD_NS        (10ull * 1000000000ull) /* to send one request head: slowloris gets 408 */
#define STALL_NS       (30ull * 1000000000ull) /* a client that stops reading its response */
#define CACHE_FILE_MAX (2u << 20)
#define CACHE_TOTAL    (64u << 20)
#define CACHE_BUCKETS  1024
#define BENCH_EXIT     16

struct cached {
	char *path;
	char *data;
	uint64_t size;
	int64_t mtime;
	struct cached *next;
};

struct conn {
	int fd;
	char peer[24];
	char in[IN_SIZE];
	size_t in_len;
	uint64_t head_start_ns, last_ns; /* 0: no partial head */
	/* The response: head (and small bodies) in out, then the body from
	 * mem (a cached file) or from file_fd. */
	bool responding, close_after;
	char out[HEAD_MAX + CHUNK];
	size_t out_off, out_len;
	const char *mem;
	uint64_t mem_left;
	int file_fd;
	uint64_t file_off, file_left;
	/* For the log line. */
	char req_line[128];
	int status;
	uint64_t bytes;
};

static struct conn *conns[MAX_CONNS];
static int nconns;
static const char *root = "/www";
static bool quiet, bench;
static struct cached *cache[CACHE_BUCKETS];
static uint64_t cache_bytes;
static uint64_t start_ns;
static struct {
	uint64_t requests, bytes, accepted, refused, evicted, timeouts;
	uint64_t status[6]; /* 1xx..5xx */
} stats;

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void die(const char *what)
{
	fprintf(stderr, "httpd: %s: %s\n", what, strerror(errno));
	exit(1);
}

static void set_nonblock(int fd)
{
	int fl = fcntl(fd, F_GETFL);
	if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
		die("fcntl");
}

/* ---- the log ---------------------------------------------------------------------------- */

static void log_request(struct conn *c)
{
	if (quiet)
		return;
	static const char mon[12][4] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
	                                "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
	time_t t = time(NULL);
	struct tm tm;
	gmtime_r(&t, &tm);
	/* The common log format: host ident authuser [date] "request" status bytes. */
	printf("%s - - [%02d/%s/%04d:%02d:%02d:%02d +0000] \"%s\" %d %llu\n", c->peer, tm.tm_mday, mon[tm.tm_mon % 12],
	       tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec, c->req_line, c->status,
	       (unsigned long long)c->bytes);
	fflush(stdout);
}

/* ---- the cache of small files ------------------------------------------------------------- */

static unsigned hash(const char *s)
{
	unsigned h = 2166136261u;
	while (*s)
		h = (h ^ (unsigned char)*s++) * 16777619u;
	return h % CACHE_BUCKETS;
}

/* The file's bytes from memory, read once; NULL when it is not to be cached
 * or cannot be read (the caller then reads the file). */
static const struct cached *cache_get(const char *path, const struct stat *st)
{
	if ((uint64_t)st->st_size > CACHE_FILE_MAX)
		return NULL;
	unsigned h = hash(path);
	struct cached **pp = &cache[h];
	for (struct cached *e = *pp; e; pp = &e->next, e = e->next) {
		if (strcmp(e->path, path) != 0)
			continue;
		if (e->size == (uint64_t)st->st_size && e->mtime == (int64_t)st->st_mtime)
			return e;
		*pp = e->next; /* changed on disk (Linux): read it again */
		cache_bytes -= e->size;
		free(e->path);
		free(e->data);
		free(e);
		break;
	}
	if (cache_bytes + (uint64_t)st->st_size > CACHE_TOTAL)
		return NULL;
	struct cached *e = calloc(1, sizeof(*e));
	int fd = open(path, O_RDONLY);
	if (!e || fd < 0)
		goto fail;
	e->size = (uint64_t)st->st_size;
	e->mtime = (int64_t)st->st_mtime;
	e->data = malloc(e->size ? e->size : 1);
	e->path = strdup(path);
	if (!e->data || !e->path)
		goto fail;
	for (uint64_t got = 0; got < e->size;) {
		ssize_t n = pread(fd, e->data + got, e->size - got, (off_t)got);
		if (n <= 0)
			goto fail;
		got += (uint64_t)n;
	}
	close(fd);
	e->next = cache[h];
	cache[h] = e;
	cache_bytes += e->size;
	return e;
fail:
	if (fd >= 0)
		close(fd);
	if (e) {
		free(e->data);
		free(e->path);
		free(e);
	}
	return NULL;
}

/* ---- responses -------------------------------------------------------------------------- */

static const char *reason(int status)
{
	switch (status) {
	case 200:
		return "OK";
	case 206:
		return "Partial Content";
	case 301:
		return "Moved Permanently";
	case 304:
		return "Not Modified";
	case 400:
		return "Bad Request";
	case 404:
		return "Not Found";
	case 405:
		return "Method Not Allowed";
	case 408:
		return "Request Timeout";
	case 413:
		return "Content Too Large";
	case 414:
		return "URI Too Long";
	case 416:
		return "Range Not Satisfiable";
	case 431:
		return "Request Header Fields Too Large";
	case 500:
		return "Internal Server Error";
	case 501:
		return "Not Implemented";
	default:
		return "Unknown";
	}
}

static const char *content_type(const char *path)
{
	static const char *const types[][2] = {
	    {".html", "text/html; charset=utf-8"},
	    {".htm", "text/html; charset=utf-8"},
	    {".css", "text/css; charset=utf-8"},
	    {".js", "text/javascript; charset=utf-8"},
	    {".json", "application/json"},
	    {".txt", "text/plain; charset=utf-8"},
	    {".md", "text/markdown; charset=utf-8"},
	    {".svg", "image/svg+xml"},
	    {".png", "image/png"},
	    {".jpg", "image/jpeg"},
	    {".jpeg", "image/jpeg"},
	    {".gif", "image/gif"},
	    {".ico", "image/x-icon"},
	    {".webp", "image/webp"},
	    {".pdf", "application/pdf"},
	    {".xml", "application/xml"},
	    {".wasm", "application/wasm"},
	    {".woff2", "font/woff2"},
	    {".tar", "application/x-tar"},
	    {".gz", "application/gzip"},
	};
	const char *dot = strrchr(path, '.');
	const char *slash = strrchr(path, '/');
	if (dot && (!slash || dot > slash))
		for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++)
			if (strcasecmp(dot, types[i][0]) == 0)
				return types[i][1];
	return "application/octet-stream";
}

/* Appends to the response head. */
static void out_printf(struct conn *c, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	size_t room = sizeof(c->out) - c->out_len;
	int n = vsnprintf(c->out + c->out_len, room, fmt, ap);
	va_end(ap);
	if (n > 0)
		c->out_len += (size_t)n < room ? (size_t)n : room - 1;
}

static void out_bytes(struct conn *c, const void *p, size_t n)
{
	if (n > sizeof(c->out) - c->out_len)
		n = sizeof(c->out) - c->out_len;
	memcpy(c->out + c->out_len, p, n);
	c->out_len += n;
}

/* The status line and the fields every response has. */
static void head(struct conn *c, int status, const char *type, uint64_t length)
{
	char date[30];
	http_date((int64_t)time(NULL), date);
	c->status = status;
	stats.status[status / 100 < 6 ? status / 100 : 5]++;
	out_printf(c,
	           "HTTP/1.1 %d %s\r\nServer: ringlet-httpd\r\nDate: %s\r\nContent-Length: %llu\r\n%s%s%s"
	           "Connection: %s\r\n",
	           status, reason(status), date, (unsigned long long)length, type ? "Content-Type: " : "",
	           type ? type : "", type ? "\r\n" : "", c->close_after ? "close" : "keep-alive");
}

static void end_head(struct conn *c) { out_printf(c, "\r\n"); }

/* A small generated body: status page, listing, error. */
static void respond_mem(struct conn *c, int status, const char *type, const char *body, size_t len, bool send_body,
                        const char *extra)
{
	head(c, status, type, len);
	if (extra)
		out_printf(c, "%s", extra);
	end_head(c);
	if (send_body)
		out_bytes(c, body, len);
	c->bytes = send_body ? len : 0;
}

static void respond_error(struct conn *c, int status, bool send_body, bool close_after)
{
	char body[64];
	int n = snprintf(body, sizeof(body), "%d %s\n", status, reason(status));
	if (close_after)
		c->close_after = true;
	respond_mem(c, status, "text/plain; charset=utf-8", body, (size_t)n, send_body,
	            status == 405 ? "Allow: GET, HEAD\r\n" : NULL);
}

/* ---- directory listings and /ringlet/status: built in a growing buffer -------------------- */

struct buf {
	char *p;
	size_t len, cap;
};

static void bprintf(struct buf *b, const char *fmt, ...)
{
	for (;;) {
		va_list ap;
		va_start(ap, fmt);
		size_t room = b->cap - b->len;
		int n = vsnprintf(b->p ? b->p + b->len : NULL, room, fmt, ap);
		va_end(ap);
		if (n < 0)
			return;
		if ((size_t)n < room) {
			b->len += (size_t)n;
			return;
		}
		size_t cap = (b->cap + (size_t)n + 1) * 2;
		char *p = realloc(b->p, cap);
		if (!p)
			return;
		b->p = p;
		b->cap = cap;
	}
}

/* HTML-escaped text. */
static void bhtml(struct buf *b, const char *s)
{
	for (; *s; s++) {
		switch (*s) {
		case '<':
			bprintf(b, "&lt;");
			break;
		case '>':
			bprintf(b, "&gt;");
			break;
		case '&':
			bprintf(b, "&amp;");
			break;
		case '"':
			bprintf(b, "&quot;");
			break;
		case '\'':
			bprintf(b, "&#39;");
			break;
		default:
			bprintf(b, "%c", *s);
		}
	}
}

/* Percent-encoded for an href: everything but unreserved characters and '/'. */
static void burl(struct buf *b, const char *s)
{
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || strchr("-._~/", c))
			bprintf(b, "%c", c);
		else
			bprintf(b, "%%%02X", c);
	}
}

#ifdef __ringlet__
/* A JSON string's contents. */
static void bjson(struct buf *b, const char *s)
{
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '"' || c == '\\')
			bprintf(b, "\\%c", c);
		else if (c < 0x20)
			bprintf(b, "\\u%04x", c);
		else
			bprintf(b, "%c", c);
	}
}
#endif

static int cmp_names(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static void listing(struct conn *c, const char *fs_path, const char *url_path, bool send_body)
{
	DIR *d = opendir(fs_path);
	if (!d) {
		respond_error(c, 404, send_body, false);
		return;
	}
	char **names = NULL;
	size_t n = 0, cap = 0;
	for (struct dirent *e; (e = readdir(d));) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		if (n == cap) {
			cap = cap ? cap * 2 : 32;
			char **p = realloc(names, cap * sizeof(*names));
			if (!p)
				break;
			names = p;
		}
		size_t l = strlen(e->d_name);
		char *s = malloc(l + 2);
		if (!s)
			break;
		memcpy(s, e->d_name, l);
		s[l] = '\0';
#ifdef DT_DIR
		if (e->d_type == DT_DIR)
			strcpy(s + l, "/");
#endif
		names[n++] = s;
	}
	closedir(d);
	qsort(names, n, sizeof(*names), cmp_names);
	struct buf b = {0};
	bprintf(&b, "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>Index of ");
	bhtml(&b, url_path);
	bprintf(&b, "</title></head>\n<body><h1>Index of ");
	bhtml(&b, url_path);
	bprintf(&b, "</h1>\n<ul>\n");
	if (strcmp(url_path, "/") != 0)
		bprintf(&b, "<li><a href=\"../\">../</a></li>\n");
	for (size_t i = 0; i < n; i++) {
		bprintf(&b, "<li><a href=\"");
		burl(&b, names[i]);
		bprintf(&b, "\">");
		bhtml(&b, names[i]);
		bprintf(&b, "</a></li>\n");
		free(names[i]);
	}
	free(names);
	bprintf(&b, "</ul></body></html>\n");
	if (b.len > CHUNK) {
		respond_error(c, 500, send_body, false); /* too many entries for one response buffer */
	} else {
		respond_mem(c, 200, "text/html; charset=utf-8", b.p ? b.p : "", b.len, send_body, NULL);
	}
	free(b.p);
}

/* /ringlet/status: what the kernel knows, in HTML or (?json) JSON. */
static void status_page(struct conn *c, bool json, bool send_body)
{
	struct buf b = {0};
	uint64_t up_ms = (now_ns() - start_ns) / 1000000;
	if (json)
		bprintf(&b,
		        "{\"uptime_ms\":%llu,\"connections\":%d,\"requests\":%llu,\"bytes_sent\":%llu,"
		        "\"cache_bytes\":%llu",
		        (unsigned long long)up_ms, nconns, (unsigned long long)stats.requests,
		        (unsigned long long)stats.bytes, (unsigned long long)cache_bytes);
	else
		bprintf(
		    &b,
		    "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>Ringlet status</title></head><body>\n"
		    "<h1>Ringlet status</h1>\n<p>Up %llu.%03llu s; %d connections open; %llu requests, %llu bytes "
		    "sent; %llu KiB of files cached.</p>\n",
		    (unsigned long long)(up_ms / 1000), (unsigned long long)(up_ms % 1000), nconns,
		    (unsigned long long)stats.requests, (unsigned long long)stats.bytes,
		    (unsigned long long)(cache_bytes >> 10));
#ifndef __ringlet__
	/* The Linux build: the kernel's figures are Linux's own (/proc), not shown here. */
	if (json)
		bprintf(&b, ",\"kernel\":\"linux\",\"disks\":\"not present\",\"net\":\"not present\","
		            "\"entropy\":\"not present\",\"balloon\":\"not present\",\"memory\":\"not present\"}\n");
	else
		bprintf(&b, "<p>Linux build: disks, network, entropy, balloon and memory: not present.</p>\n");
#else
	/* Disks. */
	bprintf(&b, json ? ",\"disks\":["
	                 : "<h2>Disks</h2>\n<table border=\"1\"><tr><th>name</th><th>bytes</th>"
	                   "<th>bus</th><th>transport</th><th>wake-up</th><th>wake-ups</th><th>read-only</th></tr>\n");
	for (int i = 0; i < blk_count(); i++) {
		struct blk_info in;
		if (blk_info(i, &in) != 0)
			continue;
		if (json)
			bprintf(&b,
			        "%s{\"name\":\"%s\",\"bytes\":%llu,\"bus\":\"%s\",\"modern\":%s,\"wakeup\":\"%s\","
			        "\"wakeups\":%llu,\"read_only\":%s}",
			        i ? "," : "", in.name, (unsigned long long)in.size, in.bus,
			        in.modern ? "true" : "false", in.wakeup, (unsigned long long)in.wakeups,
			        in.read_only ? "true" : "false");
		else
			bprintf(&b,
			        "<tr><td>%s</td><td>%llu</td><td>%s</td><td>%s</td><td>%s</td><td>%llu</td><td>%s</"
			        "td></tr>\n",
			        in.name, (unsigned long long)in.size, in.bus, in.modern ? "modern" : "legacy",
			        in.wakeup, (unsigned long long)in.wakeups, in.read_only ? "yes" : "no");
	}
	bprintf(&b, json ? "]" : "</table>\n");
	/* Network. */
	bprintf(&b,
	        json
	            ? ",\"net\":["
	            : "<h2>Network</h2>\n<table border=\"1\"><tr><th>name</th><th>MAC</th><th>IPv4</th>"
	              "<th>link</th><th>rx frames</th><th>tx frames</th><th>rx dropped</th><th>tx dropped</th></tr>\n");
	for (int i = 0; i < ringlet_net_count(); i++) {
		struct ringlet_netif ni;
		if (ringlet_net_info(i, &ni) != 0)
			continue;
		char mac[18];
		snprintf(mac, sizeof(mac), "%02x:%02x:%02x:%02x:%02x:%02x", ni.mac[0], ni.mac[1], ni.mac[2], ni.mac[3],
		         ni.mac[4], ni.mac[5]);
		if (json)
			bprintf(
			    &b,
			    "%s{\"name\":\"%s\",\"mac\":\"%s\",\"ipv4\":\"%s/%u\",\"link_up\":%s,\"rx_frames\":%llu,"
			    "\"tx_frames\":%llu,\"rx_dropped\":%llu,\"tx_dropped\":%llu,\"features\":\"%s\"}",
			    i ? "," : "", ni.name, mac, ni.ipv4, ni.prefix, ni.link_up ? "true" : "false",
			    (unsigned long long)ni.rx_frames, (unsigned long long)ni.tx_frames,
			    (unsigned long long)ni.rx_dropped, (unsigned long long)ni.tx_dropped, ni.features);
		else
			bprintf(
			    &b,
			    "<tr><td>%s</td><td>%s</td><td>%s/%u</td><td>%s</td><td>%llu</td><td>%llu</td><td>%llu</td>"
			    "<td>%llu</td></tr>\n",
			    ni.name, mac, ni.ipv4, ni.prefix, ni.link_up ? "up" : "down",
			    (unsigned long long)ni.rx_frames, (unsigned long long)ni.tx_frames,
			    (unsigned long long)ni.rx_dropped, (unsigned long long)ni.tx_dropped);
	}
	bprintf(&b, json ? "]" : "</table>\n");
	/* Entropy. */
	struct random_info ri;
	random_info(&ri);
	if (json) {
		bprintf(&b, ",\"entropy\":{\"seeded_from\":\"");
		bjson(&b, ri.seeded_from);
		bprintf(&b, "\",\"weak\":%s,\"virtio_rng\":%s,\"reseeds\":%llu,\"bytes\":%llu}",
		        ri.weak ? "true" : "false", ri.virtio_rng ? "true" : "false", (unsigned long long)ri.reseeds,
		        (unsigned long long)ri.bytes);
	} else {
		bprintf(&b, "<h2>Entropy</h2>\n<p>Seeded from ");
		bhtml(&b, ri.seeded_from);
		bprintf(&b, "%s; virtio-rng %s; %llu reseeds, %llu bytes out.</p>\n", ri.weak ? " (weak!)" : "",
		        ri.virtio_rng ? "present" : "not present", (unsigned long long)ri.reseeds,
		        (unsigned long long)ri.bytes);
	}
	/* The balloon: what the host asks for and what it holds, in pages of 4 KiB. */
	struct ringlet_balloon_info bi;
	if (ringlet_balloon_info(&bi) != 0 || !bi.present)
		bprintf(&b, json ? ",\"balloon\":\"not present\"" : "<h2>Balloon</h2>\n<p>not present</p>\n");
	else if (json)
		bprintf(&b,
		        ",\"balloon\":{\"target_pages\":%u,\"actual_pages\":%u,\"inflated_pages\":%llu,"
		        "\"deflated_pages\":%llu,\"oom_events\":%llu}",
		        bi.target_pages, bi.actual_pages, (unsigned long long)bi.inflated_pages,
		        (unsigned long long)bi.deflated_pages, (unsigned long long)bi.oom_events);
	else
		bprintf(
		    &b,
		    "<h2>Balloon</h2>\n<p>target %u pages, actual %u pages (%llu inflated, %llu deflated since boot, "
		    "%llu deflations on OOM)</p>\n",
		    bi.target_pages, bi.actual_pages, (unsigned long long)bi.inflated_pages,
		    (unsigned long long)bi.deflated_pages, (unsigned long long)bi.oom_events);
	/* Memory: the page allocator's view. */
	struct ringlet_mem_info mi;
	ringlet_mem_info(&mi);
	if (json)
		bprintf(&b, ",\"memory\":{\"total_bytes\":%llu,\"free_bytes\":%llu,\"heap_bytes\":%llu}}\n",
		        (unsigned long long)mi.total_bytes, (unsigned long long)mi.free_bytes,
		        (unsigned long long)mi.heap_bytes);
	else
		bprintf(&b,
		        "<h2>Memory</h2>\n<p>%llu KiB in all, %llu KiB free, %llu KiB held by the heap</p>\n"
		        "</body></html>\n",
		        (unsigned long long)(mi.total_bytes >> 10), (unsigned long long)(mi.free_bytes >> 10),
		        (unsigned long long)(mi.heap_bytes >> 10));
#endif
#ifndef __ringlet__
	if (!json)
		bprintf(&b, "</body></html>\n");
#endif
	if (b.len > CHUNK)
		respond_error(c, 500, send_body, false);
	else
		respond_mem(c, 200, json ? "application/json" : "text/html; charset=utf-8", b.p ? b.p : "", b.len,
		            send_body, "Cache-Control: no-store\r\n");
	free(b.p);
}

/* ---- files -------------------------------------------------------------------------------- */

/* Does If-None-Match's list hold our tag (or "*")? Weak comparison (RFC 9110 §13.1.2). */
static bool etag_matches(const char *v, size_t n, const char *tag)
{
	size_t tl = strlen(tag);
	for (size_t i = 0; i < n;) {
		while (i < n && (v[i] == ' ' || v[i] == ','))
			i++;
		if (i < n && v[i] == '*')
			return true;
		if (i + 2 < n && v[i] == 'W' && v[i + 1] == '/')
			i += 2;
		if (i + tl <= n && memcmp(v + i, tag, tl) == 0)
			return true;
		while (i < n && v[i] != ',')
			i++;
	}
	return false;
}

static void serve_file(struct conn *c, const struct http_request *req, const char *path, const struct stat *st,
                       bool send_body)
{
	char etag[48], lm[30], extra[256];
	uint64_t size = (uint64_t)st->st_size;
	snprintf(etag, sizeof(etag), "\"%llx-%llx\"", (unsigned long long)size, (unsigned long long)st->st_mtime);
	http_date((int64_t)st->st_mtime, lm);
	int n = snprintf(extra, sizeof(extra), "Last-Modified: %s\r\nETag: %s\r\nAccept-Ranges: bytes\r\n", lm, etag);
	/* RFC 9110 §13.2.2: If-None-Match first; If-Modified-Since only without it. */
	bool not_modified = req->if_none_match ? etag_matches(req->if_none_match, req->if_none_match_len, etag)
	                                       : req->if_modified_since >= 0 && req->if_modified_since >= st->st_mtime;
	if (not_modified) {
		c->status = 304;
		stats.status[3]++;
		char date[30];
		http_date((int64_t)time(NULL), date);
		out_printf(c,
		           "HTTP/1.1 304 Not Modified\r\nServer: ringlet-httpd\r\nDate: %s\r\n%sConnection: %s\r\n\r\n",
		           date, extra, c->close_after ? "close" : "keep-alive");
		return;
	}
	uint64_t first = 0, last = size ? size - 1 : 0, len = size;
	int status = 200;
	if (req->range) {
		int r = http_range(req->range, req->range_len, size, &first, &last);
		if (r < 0) {
			snprintf(extra + n, sizeof(extra) - (size_t)n, "Content-Range: bytes */%llu\r\n",
			         (unsigned long long)size);
			respond_mem(c, 416, "text/plain; charset=utf-8", "416 Range Not Satisfiable\n", 26, send_body,
			            extra);
			return;
		}
		if (r > 0) {
			status = 206;
			len = last - first + 1;
			snprintf(extra + n, sizeof(extra) - (size_t)n, "Content-Range: bytes %llu-%llu/%llu\r\n",
			         (unsigned long long)first, (unsigned long long)last, (unsigned long long)size);
		}
	}
	const struct cached *e = send_body ? cache_get(path, st) : NULL;
	int fd = -1;
	if (send_body && !e && len && (fd = open(path, O_RDONLY)) < 0) {
		respond_error(c, 500, send_body, false);
		return;
	}
	head(c, status, content_type(path), len);
	out_printf(c, "%s", extra);
	end_head(c);
	if (!send_body)
		return;
	c->bytes = len;
	if (e && len <= 4096) {
		out_bytes(c, e->data + first, len); /* small: one segment with the head */
	} else if (e) {
		c->mem = e->data + first;
		c->mem_left = len;
	} else if (fd >= 0) {
		c->file_fd = fd;
		c->file_off = first;
		c->file_left = len;
	}
}

/* One complete request head of head_len bytes at the start of c->in. */
static void handle(struct conn *c, const struct http_request *req)
{
	bool send_body = req->method != HTTP_HEAD;
	char path[HTTP_MAX_PATH + 16], fs_path[HTTP_MAX_PATH + 256];
	bool slash;
	const char *query;
	size_t query_len;

	c->close_after = !req->keep_alive;
	if (req->method == HTTP_UNKNOWN) {
		respond_error(c, 501, true, true);
		return;
	}
	if (req->method == HTTP_OTHER_KNOWN) {
		respond_error(c, 405, true, true); /* and its body, if any, is not read */
		return;
	}
	if (req->has_body) {
		respond_error(c, 413, send_body, true);
		return;
	}
	if (http_path(req->target, req->target_len, path, sizeof(path), &slash, &query, &query_len) < 0) {
		respond_error(c, 400, send_body, true);
		return;
	}
	if (strcmp(path, "/ringlet/status") == 0) {
		status_page(c, query && query_len >= 4 && memcmp(query, "json", 4) == 0, send_body);
		return;
	}
	snprintf(fs_path, sizeof(fs_path), "%s%s", root, path);
	struct stat st;
	if (stat(fs_path, &st) != 0) {
		respond_error(c, 404, send_body, false);
		return;
	}
	if (S_ISDIR(st.st_mode)) {
		if (!slash) {
			char loc[HTTP_MAX_PATH + 64];
			/* The path as the client sent it (still encoded), with the '/' added. */
			size_t tl = req->target_len;
			const char *q = memchr(req->target, '?', tl);
			size_t pl = q ? (size_t)(q - req->target) : tl;
			snprintf(loc, sizeof(loc), "Location: %.*s/%.*s\r\n", (int)pl, req->target, (int)(tl - pl),
			         req->target + pl);
			respond_mem(c, 301, "text/plain; charset=utf-8", "301 Moved Permanently\n", 22, send_body, loc);
			return;
		}
		char index[sizeof(fs_path) + 16];
		snprintf(index, sizeof(index), "%s%sindex.html", fs_path,
		         fs_path[strlen(fs_path) - 1] == '/' ? "" : "/");
		struct stat ist;
		if (stat(index, &ist) == 0 && S_ISREG(ist.st_mode)) {
			serve_file(c, req, index, &ist, send_body);
			return;
		}
		if (strcmp(path, "/") != 0)
			strcat(path, "/");
		listing(c, fs_path, path, send_body);
		return;
	}
	if (!S_ISREG(st.st_mode)) {
		respond_error(c, 404, send_body, false);
		return;
	}
	serve_file(c, req, fs_path, &st, send_body);
}

/* ---- connections -------------------------------------------------------------------------- */

static void conn_close(int i)
{
	struct conn *c = conns[i];
	close(c->fd);
	if (c->file_fd >= 0)
		close(c->file_fd);
	free(c);
	conns[i] = conns[--nconns];
}

static void start_response(struct conn *c)
{
	c->responding = true;
	c->out_off = c->out_len = 0;
	c->mem = NULL;
	c->mem_left = 0;
	c->file_fd = -1;
	c->file_left = 0;
	c->bytes = 0;
	c->status = 0;
}

/* Parses what has come; starts at most one response (the next waits for it:
 * pipelined requests are answered in order). */
static void process_input(struct conn *c)
{
	if (c->responding || c->in_len == 0)
		return;
	struct http_request req;
	int r = http_parse(c->in, c->in_len, &req);
	if (r == 0) {
		if (!c->head_start_ns)
			c->head_start_ns = now_ns();
		return;
	}
	start_response(c);
	stats.requests++;
	c->head_start_ns = 0;
	if (r < 0) {
		snprintf(c->req_line, sizeof(c->req_line), "-");
		respond_error(c, -r, true, true);
		c->in_len = 0; /* the rest is not read: the connection closes */
		return;
	}
	snprintf(c->req_line, sizeof(c->req_line), "%.*s %.*s HTTP/1.%d", (int)req.method_len, req.method_s,
	         (int)(req.target_len > 80 ? 80 : req.target_len), req.target, req.minor);
	for (char *p = c->req_line; *p; p++)
		if (*p == '"' || (unsigned char)*p < 0x20)
			*p = '?';
	handle(c, &req);
	memmove(c->in, c->in + r, c->in_len - (size_t)r);
	c->in_len -= (size_t)r;
}

/* Sends what it can without waiting. Returns false when the connection is to be closed. */
static bool pump(struct conn *c)
{
	while (c->responding) {
		if (c->out_off == c->out_len && c->file_left && c->file_fd >= 0) {
			/* The next piece of a large file, straight into the send buffer. */
			size_t want = c->file_left < CHUNK ? (size_t)c->file_left : CHUNK;
			ssize_t n = pread(c->file_fd, c->out, want, (off_t)c->file_off);
			if (n <= 0)
				return false; /* the file went short: the client sees the length was a lie */
			c->out_off = 0;
			c->out_len = (size_t)n;
			c->file_off += (uint64_t)n;
			c->file_left -= (uint64_t)n;
		}
		const char *p;
		size_t len;
		if (c->out_off < c->out_len) {
			p = c->out + c->out_off;
			len = c->out_len - c->out_off;
		} else if (c->mem_left) {
			p = c->mem;
			len = c->mem_left > (1u << 20) ? (1u << 20) : (size_t)c->mem_left;
		} else {
			/* Done. */
			log_request(c);
			stats.bytes += c->bytes;
			c->responding = false;
			if (c->file_fd >= 0) {
				close(c->file_fd);
				c->file_fd = -1;
			}
			if (c->close_after)
				return false;
			c->last_ns = now_ns();
			process_input(c); /* a pipelined request may be waiting */
			continue;
		}
		ssize_t n = send(c->fd, p, len, MSG_NOSIGNAL);
		if (n < 0)
			return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR;
		c->last_ns = now_ns();
		if (c->out_off < c->out_len) {
			c->out_off += (size_t)n;
		} else {
			c->mem += n;
			c->mem_left -= (uint64_t)n;
		}
	}
	return true;
}

/* Reads what has come. Returns false when the connection is to be closed. */
static bool receive(struct conn *c)
{
	if (c->responding || c->in_len == sizeof(c->in))
		return true; /* back-pressure: read more once the response is out */
	ssize_t n = recv(c->fd, c->in + c->in_len, sizeof(c->in) - c->in_len, 0);
	if (n == 0)
		return false;
	if (n < 0)
		return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR;
	c->in_len += (size_t)n;
	c->last_ns = now_ns();
	process_input(c);
	return true;
}

/* When every slot is taken, the connection idle the longest (nothing asked,
 * nothing owed) makes room for a newcomer, as a keep-alive connection may
 * be closed at any time (RFC 9112 §9.5); false when none is idle. */
static bool evict_idle(void)
{
	int victim = -1;
	for (int i = 0; i < nconns; i++)
		if (!conns[i]->responding && !conns[i]->in_len &&
		    (victim < 0 || conns[i]->last_ns < conns[victim]->last_ns))
			victim = i;
	if (victim < 0)
		return false;
	stats.evicted++;
	conn_close(victim);
	return true;
}

static void accept_all(int ls)
{
	for (;;) {
		struct sockaddr_in sa;
		socklen_t sl = sizeof(sa);
		int fd = accept(ls, (struct sockaddr *)&sa, &sl);
		if (fd < 0) {
			/* Out of descriptors: make room for the next one the same way. */
			if ((errno == EMFILE || errno == ENFILE) && evict_idle())
				continue;
			return;
		}
		if (nconns == MAX_CONNS && !evict_idle()) {
			/* Full of busy connections: the newcomer is closed at once. */
			stats.refused++;
			close(fd);
			continue;
		}
		struct conn *c = malloc(sizeof(*c));
		if (!c) {
			close(fd);
			continue;
		}
		memset(c, 0, offsetof(struct conn, out));
		c->fd = fd;
		c->file_fd = -1;
		c->last_ns = now_ns();
		char a[INET_ADDRSTRLEN];
		snprintf(c->peer, sizeof(c->peer), "%s", inet_ntop(AF_INET, &sa.sin_addr, a, sizeof(a)) ? a : "?");
		set_nonblock(fd);
		int one = 1;
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		conns[nconns++] = c;
		stats.accepted++;
	}
}

/* Idle, slow and stuck connections. */
static void sweep(void)
{
	uint64_t now = now_ns();
	for (int i = nconns - 1; i >= 0; i--) {
		struct conn *c = conns[i];
		if (!c->responding && c->head_start_ns && now - c->head_start_ns > HEAD_NS) {
			/* A head that does not come to an end in time (slowloris): 408. */
			stats.timeouts++;
			start_response(c);
			snprintf(c->req_line, sizeof(c->req_line), "-");
			respond_error(c, 408, true, true);
			c->in_len = 0;
			c->head_start_ns = 0;
			if (!pump(c))
				conn_close(i);
		} else if ((!c->responding && !c->in_len && now - c->last_ns > IDLE_NS) ||
		           (c->responding && now - c->last_ns > STALL_NS)) {
			stats.timeouts++;
			conn_close(i);
		}
	}
}

static const char *arg_value(int argc, char **argv, const char *key)
{
	size_t k = strlen(key);
	for (int i = 1; i < argc; i++)
		if (strncmp(argv[i], key, k) == 0 && argv[i][k] == '=')
			return argv[i] + k + 1;
	return NULL;
}

int main(int argc, char **argv)
{
	int port = 80;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--port") && i + 1 < argc)
			port = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--root") && i + 1 < argc)
			root = argv[++i];
		else if (!strcmp(argv[i], "--quiet"))
			quiet = true;
	}
	const char *b = arg_value(argc, argv, "bench");
	bench = b && !strcmp(b, "httpd");
	if (bench)
		quiet = true; /* a console line per request would be the benchmark's bottleneck */
	start_ns = now_ns();
	signal(SIGPIPE, SIG_IGN);
	if (bench) {
		printf("BENCH-READY %llu\n", (unsigned long long)start_ns);
		fflush(stdout);
	}
#ifdef __ringlet__
	if (!ringlet_mounted(root)) {
		int err = ringlet_mount_tar(root, "vda");
		if (err < 0)
			fprintf(stderr, "httpd: mounting vda at %s: error %d (serving what is there)\n", root, err);
	}
#endif
	int ls = socket(AF_INET, SOCK_STREAM, 0);
	if (ls < 0)
		die("socket");
	int one = 1;
	setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	if (bind(ls, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		die("bind");
	if (listen(ls, 128) < 0)
		die("listen");
	set_nonblock(ls);
	printf("httpd: serving %s on port %d\n", root, port);
	if (bench)
		printf("BENCH-SERVING httpd port=%d\n", port);
	fflush(stdout);

	static struct pollfd pfd[MAX_CONNS + 2];
	char line[256];
	size_t line_len = 0;
	uint64_t last_sweep = now_ns();
	for (;;) {
		int n = 0;
		pfd[n++] = (struct pollfd){.fd = ls, .events = POLLIN};
		int con0 = n;
		if (bench)
			pfd[n++] = (struct pollfd){.fd = 0, .events = POLLIN};
		int first = n;
		for (int i = 0; i < nconns; i++)
			pfd[n++] =
			    (struct pollfd){.fd = conns[i]->fd, .events = conns[i]->responding ? POLLOUT : POLLIN};
		if (poll(pfd, (nfds_t)n, 1000) < 0 && errno != EINTR)
			die("poll");
		/* Back to front: conn_close() moves the last connection into the gap. */
		for (int i = nconns - 1; i >= 0; i--) {
			short re = pfd[first + i].revents;
			if (!re)
				continue;
			struct conn *c = conns[i];
			bool ok = true;
			if (re & (POLLIN | POLLHUP | POLLERR))
				ok = receive(c);
			if (ok && c->responding)
				ok = pump(c);
			if (!ok)
				conn_close(i);
		}
		if (pfd[0].revents & POLLIN)
			accept_all(ls);
		if (bench && (pfd[con0].revents & POLLIN)) {
			ssize_t r = read(0, line + line_len, sizeof(line) - 1 - line_len);
			if (r > 0) {
				line_len += (size_t)r;
				line[line_len] = '\0';
				if (strstr(line, "BENCH-STOP")) {
					printf("BENCH-RESULT {}\n");
					fflush(stdout);
					return BENCH_EXIT;
				}
				char *nl = strrchr(line, '\n');
				if (nl) { /* keep only the unfinished line */
					line_len = strlen(nl + 1);
					memmove(line, nl + 1, line_len + 1);
				} else if (line_len == sizeof(line) - 1) {
					line_len = 0;
				}
			}
		}
		if (now_ns() - last_sweep > 500000000ull) {
			sweep();
			last_sweep = now_ns();
		}
	}
}
