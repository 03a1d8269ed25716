/*
 * types.c - freeing the result objects the store API returns.
 */
#include "internal.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

void dura_record_clear(void *item)
{
	dura_record *r = item;
	if (!r)
		return;
	dura_free(r->run_id);
	dura_free(r->workflow_name);
	dura_free(r->foreign_id);
	dura_free(r->status);
	dura_free(r->state);
	dura_free(r->error);
	dura_free(r->meta);
	dura_free(r->lease_owner);
	dura_free(r->concurrency_key);
	dura_free(r->wait);
	dura_free(r->parent_id);
	dura_free(r->workflow_version);
	memset(r, 0, sizeof(*r));
}

void dura_record_free(dura_record *r)
{
	if (!r)
		return;
	dura_record_clear(r);
	dura_free(r);
}

void dura_record_list_free(dura_record_list *l)
{
	if (!l)
		return;
	for (size_t i = 0; i < l->count; i++)
		dura_record_clear(&l->items[i]);
	dura_free(l->items);
	dura_free(l->next_cursor);
	memset(l, 0, sizeof(*l));
}

void dura_step_clear(void *item)
{
	dura_step *s = item;
	if (!s)
		return;
	dura_free(s->run_id);
	dura_free(s->node_id);
	dura_free(s->state);
	dura_free(s->workflow_version);
	memset(s, 0, sizeof(*s));
}

void dura_step_free(dura_step *s)
{
	if (!s)
		return;
	dura_step_clear(s);
	dura_free(s);
}

void dura_step_list_free(dura_step_list *l)
{
	if (!l)
		return;
	for (size_t i = 0; i < l->count; i++)
		dura_step_clear(&l->items[i]);
	dura_free(l->items);
	memset(l, 0, sizeof(*l));
}

void dura_checkpoint_clear(void *item)
{
	dura_checkpoint *c = item;
	if (!c)
		return;
	dura_free(c->checkpoint_id);
	dura_free(c->run_id);
	dura_free(c->state);
	memset(c, 0, sizeof(*c));
}

void dura_checkpoint_free(dura_checkpoint *c)
{
	if (!c)
		return;
	dura_checkpoint_clear(c);
	dura_free(c);
}

void dura_checkpoint_list_free(dura_checkpoint_list *l)
{
	if (!l)
		return;
	for (size_t i = 0; i < l->count; i++)
		dura_checkpoint_clear(&l->items[i]);
	dura_free(l->items);
	memset(l, 0, sizeof(*l));
}

void dura_cache_entry_clear(void *item)
{
	dura_cache_entry *e = item;
	if (!e)
		return;
	dura_free(e->key);
	dura_free(e->value);
	dura_free(e->error);
	dura_free(e->metadata);
	memset(e, 0, sizeof(*e));
}

void dura_cache_entry_free(dura_cache_entry *e)
{
	if (!e)
		return;
	dura_cache_entry_clear(e);
	dura_free(e);
}

void dura_cache_list_free(dura_cache_list *l)
{
	if (!l)
		return;
	for (size_t i = 0; i < l->count; i++)
		dura_cache_entry_clear(&l->items[i]);
	dura_free(l->items);
	dura_free(l->next_cursor);
	memset(l, 0, sizeof(*l));
}

void dura_event_clear(void *item)
{
	dura_event *ev = item;
	if (!ev)
		return;
	dura_free(ev->id);
	dura_free(ev->workflow_name);
	dura_free(ev->run_id);
	dura_free(ev->type);
	dura_free(ev->data);
	memset(ev, 0, sizeof(*ev));
}

void dura_event_list_free(dura_event_list *l)
{
	if (!l)
		return;
	for (size_t i = 0; i < l->count; i++)
		dura_event_clear(&l->items[i]);
	dura_free(l->items);
	memset(l, 0, sizeof(*l));
}

void dura_store_note(char *notes, size_t size, const char *fmt, const char *arg)
{
	size_t n = strnlen(notes, size);
	if (n + 3 >= size)
		return;
	if (n)
		n += (size_t)snprintf(notes + n, size - n, "; ");
	snprintf(notes + n, size - n, fmt, arg);
}

int dura_store_grow(void **items, size_t count, size_t *cap, size_t size)
{
	if (count < *cap)
		return 0;
	size_t ncap = *cap ? *cap * 2 : 16;
	if (ncap > SIZE_MAX / size)
		return -1;
	void *p = dura_realloc(*items, ncap * size);
	if (!p)
		return -1;
	*items = p;
	*cap = ncap;
	return 0;
}

void dura_signal_clear(void *item)
{
	dura_signal *g = item;
	if (!g)
		return;
	dura_free(g->signal_id);
	dura_free(g->run_id);
	dura_free(g->name);
	dura_free(g->payload);
	memset(g, 0, sizeof(*g));
}

void dura_signal_free(dura_signal *g)
{
	if (!g)
		return;
	dura_signal_clear(g);
	dura_free(g);
}

void dura_signal_list_free(dura_signal_list *l)
{
	if (!l)
		return;
	for (size_t i = 0; i < l->count; i++)
		dura_signal_clear(&l->items[i]);
	dura_free(l->items);
	memset(l, 0, sizeof(*l));
}

void dura_schedule_clear(void *item)
{
	dura_schedule *c = item;
	if (!c)
		return;
	dura_free(c->name);
	dura_free(c->cron);
	dura_free(c->zone);
	dura_free(c->workflow_name);
	dura_free(c->state);
	memset(c, 0, sizeof(*c));
}

void dura_schedule_free(dura_schedule *c)
{
	if (!c)
		return;
	dura_schedule_clear(c);
	dura_free(c);
}

void dura_schedules_free(dura_schedules *l)
{
	if (!l)
		return;
	for (size_t i = 0; i < l->count; i++)
		dura_schedule_clear(&l->items[i]);
	dura_free(l->items);
	memset(l, 0, sizeof(*l));
}
