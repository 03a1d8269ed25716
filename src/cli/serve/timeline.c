/*
 * timeline.c - a run's steps as an inline SVG: one row and one bar per
 * committed step, from the commit before it (the run's creation for step
 * 0) to its own commit, on one time axis; a red line across at each
 * failed attempt. Every bar and line has a <title> (node, times, error)
 * that a browser shows on hover; every text in it went through sb_html.
 */
#include "serve.h"

#include <inttypes.h>

#define W 1000
#define LEFT 170
#define RIGHT 20
#define TOP 8
#define AXIS 26

static double xpos(int64_t t, int64_t t0, int64_t t1)
{
	/* in double: times from an import or a broken clock may be far apart */
	if (t1 <= t0)
		return LEFT;
	return LEFT + ((double)t - (double)t0) * (W - LEFT - RIGHT) / ((double)t1 - (double)t0);
}

void timeline_svg(sbuf *b, const dura_record *rec, const dura_step *steps, size_t n, const timeline_fail *fails,
                  size_t nfails)
{
	int row = n > 60 ? 6 : 16;
	int64_t t0 = rec->created_at, t1 = rec->created_at;
	if (n && steps[0].step > 0)
		t0 = steps[0].created_at; /* a later page: its first bar starts where the page does */
	for (size_t i = 0; i < n; i++)
		if (steps[i].created_at > t1)
			t1 = steps[i].created_at;
	/* failures after the page's last step belong on it only when it is the
	 * run's last page (a later page shows them otherwise) */
	int last_page = n == 0 || steps[n - 1].step + 1 >= rec->step_no;
	for (size_t i = 0; i < nfails && last_page; i++)
		if (fails[i].at > t1 && fails[i].at >= t0)
			t1 = fails[i].at;
	if (t0 > t1)
		t0 = t1;
	int h = TOP + (int)(n ? n : 1) * row + AXIS;
	sb_printf(b, "<svg class=\"timeline\" id=\"timeline\" viewBox=\"0 0 %d %d\" width=\"%d\" height=\"%d\" "
	             "xmlns=\"http://www.w3.org/2000/svg\" role=\"img\" aria-label=\"step timeline\">",
	          W, h, W, h);
	for (size_t i = 0; i < n; i++) {
		const dura_step *s = &steps[i];
		int64_t a = i ? steps[i - 1].created_at : (s->step == 0 ? rec->created_at : s->created_at);
		double x0 = xpos(a, t0, t1), x1 = xpos(s->created_at, t0, t1);
		double w = x1 - x0 < 2 ? 2 : x1 - x0;
		if (x0 + w > W - RIGHT)
			x0 = W - RIGHT - w;
		int y = TOP + (int)i * row;
		sb_printf(b, "<rect class=\"step%s\" data-step=\"%" PRId64 "\" x=\"%.1f\" y=\"%d\" width=\"%.1f\" height=\"%d\">"
		             "<title>step %" PRId64 ": ",
		          i + 1 == n ? " last" : "", s->step, x0, y + 1, w, row - 2, s->step);
		sb_html(b, s->node_id);
		sb_puts(b, ", ");
		sb_duration(b, s->created_at - a);
		sb_puts(b, ", committed ");
		sb_time(b, s->created_at);
		sb_puts(b, "</title></rect>");
		if (row >= 12) {
			sb_printf(b, "<text x=\"%d\" y=\"%d\">%" PRId64 " ", 4, y + row - 4, s->step);
			sb_html_cut(b, s->node_id, 24);
			sb_puts(b, "</text>");
		}
	}
	for (size_t i = 0; i < nfails; i++) {
		if (fails[i].at < t0 || fails[i].at > t1)
			continue;
		double x = xpos(fails[i].at, t0, t1);
		sb_printf(b, "<line class=\"failed\" x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%d\"><title>attempt %d of ", x, TOP,
		          x, h - AXIS, fails[i].attempt);
		sb_html(b, fails[i].node);
		sb_puts(b, " failed ");
		sb_time(b, fails[i].at);
		sb_puts(b, ": ");
		sb_html(b, fails[i].error ? fails[i].error : "(the event does not say)");
		sb_puts(b, "</title></line>");
	}
	/* the axis: the span's start, its end, and three ticks between */
	int ya = h - AXIS + 4;
	sb_printf(b, "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"#98a2b3\"/>", LEFT, ya, W - RIGHT, ya);
	for (int k = 0; k <= 4; k++) {
		int64_t t = t0 + (int64_t)(((double)t1 - (double)t0) * k / 4);
		double x = xpos(t, t0, t1);
		sb_printf(b, "<text x=\"%.1f\" y=\"%d\" text-anchor=\"%s\">+", x, ya + 14,
		          k == 0 ? "start" : k == 4 ? "end" : "middle");
		sb_duration(b, t - t0);
		sb_puts(b, "</text>");
	}
	if (n == 0)
		sb_printf(b, "<text x=\"%d\" y=\"%d\">no steps committed yet</text>", LEFT, TOP + 12);
	sb_puts(b, "</svg>\n");
}
