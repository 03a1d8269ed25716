/*
 * state.c - run states: names, parsing and the allowed transitions that
 * every store enforces for set_run_state.
 */
#include "internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const char *const state_names[] = {"unknown", "initiated", "running", "completed",
                                          "paused", "cancelled", "data_deleted", "failed"};

const char *dura_run_state_name(int s)
{
	return s >= 0 && s <= DURA_RUN_STATE_MAX ? state_names[s] : "unknown";
}

int dura_run_state_parse(int *out, const char *name)
{
	if (!out || !name || !*name)
		return dura_error_set_native(DURA_EINVAL, "", 0, NULL, "run state is missing");
	for (int i = 1; i <= DURA_RUN_STATE_MAX; i++) {
		if (strcasecmp(name, state_names[i]) == 0) {
			*out = i;
			return 0;
		}
	}
	char *end;
	long v = strtol(name, &end, 10);
	if (*end == '\0' && v >= 1 && v <= DURA_RUN_STATE_MAX) {
		*out = (int)v;
		return 0;
	}
	return dura_error_set_native(DURA_EINVAL, "", 0, NULL,
	                             "unknown run state '%.40s' (initiated, running, completed, paused, cancelled, "
	                             "data_deleted, failed)",
	                             name);
}

int dura_run_state_active(int s)
{
	return s == DURA_RUN_INITIATED || s == DURA_RUN_RUNNING || s == DURA_RUN_PAUSED;
}

/*
 * initiated -> running | paused | cancelled
 * running   -> paused | cancelled | completed | failed
 * paused    -> running | cancelled
 * failed    -> running (resume, retry later) | cancelled
 * completed, cancelled, failed -> data_deleted
 */
int dura_run_state_transition_ok(int from, int to)
{
	switch (from) {
	case DURA_RUN_INITIATED:
		return to == DURA_RUN_RUNNING || to == DURA_RUN_PAUSED || to == DURA_RUN_CANCELLED;
	case DURA_RUN_RUNNING:
		return to == DURA_RUN_PAUSED || to == DURA_RUN_CANCELLED || to == DURA_RUN_COMPLETED ||
		       to == DURA_RUN_FAILED;
	case DURA_RUN_PAUSED:
		return to == DURA_RUN_RUNNING || to == DURA_RUN_CANCELLED;
	case DURA_RUN_FAILED:
		return to == DURA_RUN_RUNNING || to == DURA_RUN_CANCELLED || to == DURA_RUN_DATA_DELETED;
	case DURA_RUN_COMPLETED:
	case DURA_RUN_CANCELLED:
		return to == DURA_RUN_DATA_DELETED;
	default:
		return 0;
	}
}

void dura_caps_format(char *buf, size_t size, uint32_t caps)
{
	static const char *const names[] = {"skip_locked", "notify", "returning", "json",
	                                    "multi_process", "durable", "sql"};
	size_t off = 0;
	if (!buf || !size)
		return;
	buf[0] = '\0';
	for (unsigned i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		if (!(caps & (1u << i)))
			continue;
		int n = snprintf(buf + off, size - off, "%s%s", off ? "," : "", names[i]);
		if (n < 0 || (size_t)n >= size - off)
			break;
		off += (size_t)n;
	}
}
