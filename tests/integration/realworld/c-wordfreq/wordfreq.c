/* wordfreq: counts the words of a text file (runs of ASCII letters, case
 * folded) and prints the byte count, word count, distinct words, the file's
 * CRC-32 and Adler-32 (zlib) and the five most frequent words (ties in byte
 * order).  A small real-world C program for kiln's integration tests. */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

struct word {
	char *text;
	unsigned long count;
};

struct table {
	struct word *slots; /* open addressing, size a power of two */
	size_t size, used;
};

static unsigned long hash(const char *s)
{
	unsigned long h = 5381;
	while (*s)
		h = h * 33 + (unsigned char)*s++;
	return h;
}

static int table_grow(struct table *t)
{
	size_t n = t->size ? t->size * 2 : 256, i, j;
	struct word *s = calloc(n, sizeof(*s));
	if (!s)
		return -1;
	for (i = 0; i < t->size; i++) {
		if (!t->slots[i].text)
			continue;
		for (j = hash(t->slots[i].text) & (n - 1); s[j].text; j = (j + 1) & (n - 1))
			;
		s[j] = t->slots[i];
	}
	free(t->slots);
	t->slots = s;
	t->size = n;
	return 0;
}

static int table_add(struct table *t, const char *w)
{
	size_t j;
	if ((t->used + 1) * 2 > t->size && table_grow(t) < 0)
		return -1;
	for (j = hash(w) & (t->size - 1); t->slots[j].text; j = (j + 1) & (t->size - 1)) {
		if (strcmp(t->slots[j].text, w) == 0) {
			t->slots[j].count++;
			return 0;
		}
	}
	t->slots[j].text = strdup(w);
	if (!t->slots[j].text)
		return -1;
	t->slots[j].count = 1;
	t->used++;
	return 0;
}

/* ends the word in WORD (LEN bytes) and counts it */
static int add_word(struct table *t, char *word, size_t *len, unsigned long *words)
{
	word[*len] = '\0';
	*len = 0;
	(*words)++;
	if (table_add(t, word) < 0) {
		fprintf(stderr, "wordfreq: out of memory\n");
		return -1;
	}
	return 0;
}

static int by_count(const void *a, const void *b)
{
	const struct word *x = a, *y = b;
	if (x->count != y->count)
		return x->count > y->count ? -1 : 1;
	return strcmp(x->text, y->text);
}

int main(int argc, char **argv)
{
	static unsigned char buf[1 << 20];
	struct table t = { 0 };
	char word[256];
	size_t len = 0, n, i, k;
	unsigned long bytes = 0, words = 0;
	uLong crc = crc32(0, Z_NULL, 0), adler = adler32(0, Z_NULL, 0);
	FILE *f;

	if (argc != 2) {
		fprintf(stderr, "usage: wordfreq FILE\n");
		return 2;
	}
	f = fopen(argv[1], "rb");
	if (!f) {
		fprintf(stderr, "wordfreq: %s: %s\n", argv[1], strerror(errno));
		return 1;
	}
	while ((n = fread(buf, 1, sizeof(buf), f)) > 0) {
		crc = crc32(crc, buf, (uInt)n);
		adler = adler32(adler, buf, (uInt)n);
		bytes += n;
		for (i = 0; i < n; i++) {
			if (buf[i] < 128 && isalpha(buf[i])) {
				if (len < sizeof(word) - 1)
					word[len++] = (char)tolower(buf[i]);
			} else if (len > 0 && add_word(&t, word, &len, &words) < 0) {
				return 1;
			}
		}
	}
	if (len > 0 && add_word(&t, word, &len, &words) < 0)
		return 1;
	if (ferror(f)) {
		fprintf(stderr, "wordfreq: %s: read error\n", argv[1]);
		return 1;
	}
	fclose(f);
	for (i = 0, k = 0; i < t.size; i++)
		if (t.slots[i].text)
			t.slots[k++] = t.slots[i];
	qsort(t.slots, k, sizeof(*t.slots), by_count);
	printf("bytes: %lu\nwords: %lu\ndistinct: %zu\ncrc32: %08lx\nadler32: %08lx\ntop:\n",
	       bytes, words, t.used, (unsigned long)crc, (unsigned long)adler);
	for (i = 0; i < k && i < 5; i++)
		printf("%7lu %s\n", t.slots[i].count, t.slots[i].text);
	return 0;
}
