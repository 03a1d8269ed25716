/*
 * transfer.h - the export format's lines (format.c), shared by the export
 * (export.c) and the import (import.c). docs/export.md is the format.
 *
 * Every line is one JSON object whose first member is "kind". Texts that
 * are JSON in the store (states, metadata, payloads, event data, a
 * version's definition) are JSON values in the line, not strings, so a
 * file reads as what it holds; times are integers, ms since the epoch, so
 * they come back exactly.
 */
#ifndef DURA_TRANSFER_H
#define DURA_TRANSFER_H

#include "../internal.h"

#include <jansson.h>

#define DURA__EXPORT_FORMAT 1
#define DURA__EXPORT_MAGIC "dura-export"

/* Each kind of line: a record out of the store into a JSON object (NULL
 * when out of memory), and back. The *_from functions fill a zeroed struct
 * with copies (freed with the matching dura_*_clear, also on failure), and
 * return 0, DURA_ENOMEM, or DURA_EINVAL with a message naming the member
 * that is missing or wrong. */
json_t *dura__line_run(const dura_record *r, size_t nsteps, size_t ncheckpoints, size_t nsignals);
int dura__line_run_from(json_t *o, dura_record *r, int64_t *nsteps, int64_t *ncheckpoints, int64_t *nsignals);
json_t *dura__line_step(const dura_step *st);
int dura__line_step_from(json_t *o, dura_step *st);
json_t *dura__line_checkpoint(const dura_checkpoint *cp);
int dura__line_checkpoint_from(json_t *o, dura_checkpoint *cp);
json_t *dura__line_signal(const dura_signal *sg);
int dura__line_signal_from(json_t *o, dura_signal *sg);
json_t *dura__line_event(const dura_event *ev);
int dura__line_event_from(json_t *o, dura_event *ev);
json_t *dura__line_schedule(const dura_schedule *sch);
int dura__line_schedule_from(json_t *o, dura_schedule *sch);
json_t *dura__line_workflow(const dura_workflow_def *d);
int dura__line_workflow_from(json_t *o, dura_workflow_def *d);
/* a cache entry: the value as base64; *value (to dura_free) decoded back */
json_t *dura__line_cache(const dura_cache_entry *e);
int dura__line_cache_from(json_t *o, dura_cache_entry *e, unsigned char **value);


#endif
