/* gmd configuration: an INI file read with inih (see deploy/gmd.conf.example).
 */
#ifndef GM_CORE_CONFIG_H
#define GM_CORE_CONFIG_H

#include <stddef.h>

typedef struct gm__config gm__config;

/* Reads `path`; NULL and err ("file:line: why") on a syntax error or I/O error.
 */
gm__config *gm__config_load(const char *path, char *err, size_t errlen);
/* An empty configuration (every key at its default). */
gm__config *gm__config_new(void);
void gm__config_destroy(gm__config **c);
/* Sets (or replaces) one value, as a command-line override would. */
void gm__config_set(gm__config *c, const char *section, const char *key,
                    const char *value);
/* The value, or def when unset. */
const char *gm__config_get(const gm__config *c, const char *section,
                           const char *key, const char *def);
/* An integer value; def when unset; -1 and err when not a number in [min,max].
 */
int gm__config_int(const gm__config *c, const char *section, const char *key,
                   long def, long min, long max, long *out, char *err,
                   size_t errlen);
/* A boolean (on/off, true/false, yes/no, 1/0); -1 and err when none of those.
 */
int gm__config_bool(const gm__config *c, const char *section, const char *key,
                    int def, int *out, char *err, size_t errlen);
/*
 * A path value resolved against the config file's folder when relative;
 * returns a malloc'd string (or NULL when unset and def is NULL).
 */
char *gm__config_path(const gm__config *c, const char *section, const char *key,
                      const char *def);

/*
 * Checks what gmd reads itself: every section and key of the file is one
 * gmd knows (a [market.NAME] section belongs to its plugin and is not
 * checked), [security] admin_keys is a comma list of 40-character Z85 keys,
 * and a [plugins] dir that is set names a folder.  0, or -1 and err naming
 * the key, what is wrong and how to fix it (a misspelt key is suggested its
 * nearest known spelling).
 */
int gm__config_check(const gm__config *c, char *err, size_t errlen);

/* 0 when every key of [section] (case aside) is one of known (NULL-ended);
 * else -1 and err: "[section] key: unknown key (did you mean X?); `who`
 * reads a, b, c". */
int gm__config_check_section(const gm__config *c, const char *section,
                             const char *const *known, const char *who,
                             char *err, size_t errlen);

/* The NAMEs of the file's [market.NAME] sections, each once, in file order:
 * up to max into out (pointers into c), how many. */
size_t gm__config_markets(const gm__config *c, const char **out, size_t max);

/* The one of names (n of them, or up to a NULL) nearest to word within 2
 * edits, case aside, or NULL: the spelling to suggest for a typo. */
const char *gm__config_nearest(const char *word, const char *const *names,
                               size_t n);

#endif
