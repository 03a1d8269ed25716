/*
 * schema.c - the migration runner (schema.h): check the recorded schema,
 * then apply what is missing under the driver's lock, one migration at a
 * time, each recorded after its statements.
 */
#include "schema.h"

#include "errors.h"

#include "../../internal.h"

#include <stdio.h>

int dura_sql_schema_check(const dura_sql_schema *sc, int auto_migrate, int *version)
{
	int rc = sc->read_version(sc->drv, version);
	if (rc)
		return rc;
	if (*version > sc->version)
		return dura_sql_err_schema_newer(sc->store, *version, sc->version);
	if (*version < sc->version && !auto_migrate)
		return *version == 0 ? dura_sql_err_schema_missing(sc->store, sc->where, sc->prefix)
		                     : dura_sql_err_schema_older(sc->store, *version, sc->version);
	return 0;
}

/* Migration v + 1: its statements, its optional ones (the first refusal
 * skips the rest of them), then its record. */
static int apply(const dura_sql_schema *sc, int v)
{
	const dura_sql_migration *m = &sc->migrations[v];
	int rc = 0, skipped = 0;
	for (const char *const *q = m->sql; *q && rc == 0; q++)
		rc = sc->exec(sc->drv, *q, v + 1, 0);
	for (const char *const *q = m->optional; rc == 0 && q && *q && !skipped; q++) {
		rc = sc->exec(sc->drv, *q, v + 1, 1);
		if (rc == 1) {
			skipped = 1;
			rc = 0;
		}
	}
	if (rc)
		return rc;
	if (!skipped)
		return sc->record(sc->drv, v + 1, m->description);
	char desc[512];
	snprintf(desc, sizeof(desc), "%s (skipped: no privilege to create routines)", m->description);
	return sc->record(sc->drv, v + 1, desc);
}

int dura_sql_schema_migrate(const dura_sql_schema *sc, int *from, int *to)
{
	int v = 0, rc = sc->lock(sc->drv);
	if (rc)
		return rc;
	if ((rc = sc->read_version(sc->drv, &v)) != 0)
		goto out;
	*from = *to = v;
	if (v > sc->version) {
		rc = dura_sql_err_schema_newer(sc->store, v, sc->version);
		goto out;
	}
	if (v < sc->version && (rc = sc->exec(sc->drv, sc->table, 0, 0)) != 0)
		goto out;
	for (; v < sc->version; v++) {
		if ((rc = apply(sc, v)) != 0)
			goto out;
		if (!sc->transactional)
			*to = v + 1;
	}
out:
	if (rc) {
		dura__error_saved saved;
		dura__error_save(&saved);
		sc->unlock(sc->drv, 0);
		dura__error_restore(&saved);
		return rc;
	}
	if ((rc = sc->unlock(sc->drv, 1)) != 0)
		return rc;
	*to = v;
	return 0;
}
