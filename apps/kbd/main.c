/*
 * apps/kbd: type lines, see them back.
 *
 * Reads lines from stdin (the serial line or a virtio keyboard, merged),
 * echoing as it goes, and prints each finished line back with its length,
 * until the line `quit`. The editing is the little a terminal's cooked mode
 * does: Backspace (DEL or ^H) removes the last character, ^U the whole
 * line; escape sequences (arrows, Home, ...) are recognised and ignored.
 * Try it: scripts/run --display vnc kbd, then type in the VNC window (or on
 * the serial console).
 */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define LINE_MAX_LEN 256

/* One byte from stdin, or -1 at its end. */
static int get(void)
{
	unsigned char c;
	return read(0, &c, 1) == 1 ? c : -1;
}

/* Reads one line into line[]; returns its length, or -1 at the end of stdin. */
static int read_line(char *line)
{
	int n = 0;
	for (;;) {
		int c = get();
		if (c < 0)
			return -1;
		if (c == '\n' || c == '\r') {
			fputs("\n", stdout);
			fflush(stdout);
			line[n] = 0;
			return n;
		}
		if (c == 0x7f || c == '\b') {
			if (n > 0) {
				n--;
				fputs("\b \b", stdout);
			}
		} else if (c == 0x15) { /* ^U */
			for (; n > 0; n--)
				fputs("\b \b", stdout);
		} else if (c == 0x1b) {
			/* ESC [ params final, or ESC O x: skip it. */
			int d = get();
			if (d == '[')
				while ((d = get()) >= 0 && !(d >= 0x40 && d <= 0x7e))
					;
			else if (d == 'O')
				get();
		} else if (c >= 0x20 && n < LINE_MAX_LEN - 1) {
			line[n++] = (char)c;
			putchar(c);
		}
		fflush(stdout);
	}
}

int main(void)
{
	char line[LINE_MAX_LEN];
	printf("kbd: type lines; `quit` ends\n");
	fflush(stdout);
	for (;;) {
		fputs("> ", stdout);
		fflush(stdout);
		int n = read_line(line);
		if (n < 0)
			break;
		if (strcmp(line, "quit") == 0)
			break;
		printf("line %zu: [%s]\n", strlen(line), line);
		fflush(stdout);
	}
	printf("kbd: bye\n");
	return 0;
}
