/* Smoke test: the PostgreSQL test server of scripts/services answers a plain libpq client. */
#include <criterion/criterion.h>
#include <libpq-fe.h>
#include <stdlib.h>

static PGconn *connect_from_env(void)
{
    const char *url = getenv("RS_TEST_PG_URL");
    cr_assert_not_null(url, "RS_TEST_PG_URL is not set: start the test servers with scripts/services start "
                            "and export the output of scripts/services env");
    PGconn *conn = PQconnectdb(url);
    cr_assert_not_null(conn, "PQconnectdb returned NULL");
    cr_assert_eq(PQstatus(conn), CONNECTION_OK, "cannot connect to %s: %s", url, PQerrorMessage(conn));
    return conn;
}

static PGresult *exec_ok(PGconn *conn, const char *sql, ExecStatusType want)
{
    PGresult *res = PQexec(conn, sql);
    cr_assert_not_null(res, "%s: %s", sql, PQerrorMessage(conn));
    cr_assert_eq(PQresultStatus(res), want, "%s: %s", sql, PQresultErrorMessage(res));
    return res;
}

Test(smoke_pg, select_one, .timeout = 20)
{
    PGconn *conn = connect_from_env();
    PGresult *res = exec_ok(conn, "SELECT 1", PGRES_TUPLES_OK);
    cr_assert_eq(PQntuples(res), 1);
    cr_assert_str_eq(PQgetvalue(res, 0, 0), "1");
    PQclear(res);
    PQfinish(conn);
}

Test(smoke_pg, temp_table_round_trip, .timeout = 20)
{
    PGconn *conn = connect_from_env();
    PQclear(exec_ok(conn, "CREATE TEMP TABLE smoke (k text PRIMARY KEY, v bigint NOT NULL)", PGRES_COMMAND_OK));

    const char *params[] = { "key", "42" };
    PGresult *res =
        PQexecParams(conn, "INSERT INTO smoke (k, v) VALUES ($1, $2::bigint)", 2, NULL, params, NULL, NULL, 0);
    cr_assert_eq(PQresultStatus(res), PGRES_COMMAND_OK, "INSERT: %s", PQresultErrorMessage(res));
    cr_assert_str_eq(PQcmdTuples(res), "1");
    PQclear(res);

    res = exec_ok(conn, "SELECT v + 1 FROM smoke WHERE k = 'key'", PGRES_TUPLES_OK);
    cr_assert_eq(PQntuples(res), 1);
    cr_assert_str_eq(PQgetvalue(res, 0, 0), "43");
    PQclear(res);

    res = exec_ok(conn, "SELECT current_user, current_database()", PGRES_TUPLES_OK);
    cr_assert_str_eq(PQgetvalue(res, 0, 0), "ringscope");
    cr_assert_str_eq(PQgetvalue(res, 0, 1), "ringscope");
    PQclear(res);
    PQfinish(conn);
}
