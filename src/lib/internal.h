/*
 * internal.h - declarations shared by the library's own files; never
 * installed. Store implementations use <dura/store.h> only.
 */
#ifndef DURA_INTERNAL_H
#define DURA_INTERNAL_H

#include "dura.h"
#include "dura/store.h"

/* errors.c */
void dura__secret_add(const char *secret);
void dura__redact_secrets(char *msg);

/* json.c */
int dura__json_valid(const char *text, const char *what);
int dura__json_object_valid(const char *text, const char *what);

/* store/store.c: built-in stores (NULL when not compiled in) */
extern const dura_store_ops dura__memory_ops;
extern const dura_store_ops dura__sqlite_ops;

#endif
