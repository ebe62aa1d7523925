/* Smoke test: the MongoDB wire-protocol test server of scripts/services answers a plain libmongoc client. */
#include <criterion/criterion.h>
#include <mongoc/mongoc.h>
#include <stdlib.h>
#include <unistd.h>

static void setup(void)
{
    mongoc_init();
}

static void teardown(void)
{
    mongoc_cleanup();
}

static mongoc_client_t *connect_from_env(void)
{
    const char *url = getenv("RS_TEST_MONGO_URL");
    cr_assert_not_null(url, "RS_TEST_MONGO_URL is not set: start the test servers with scripts/services start "
                            "and export the output of scripts/services env");
    bson_error_t error;
    mongoc_uri_t *uri = mongoc_uri_new_with_error(url, &error);
    cr_assert_not_null(uri, "bad RS_TEST_MONGO_URL %s: %s", url, error.message);
    /* Fail within the test's time limit instead of the driver's 30 s default. */
    mongoc_uri_set_option_as_int32(uri, MONGOC_URI_SERVERSELECTIONTIMEOUTMS, 5000);
    mongoc_uri_set_option_as_int32(uri, MONGOC_URI_CONNECTTIMEOUTMS, 5000);
    mongoc_uri_set_option_as_int32(uri, MONGOC_URI_SOCKETTIMEOUTMS, 5000);
    mongoc_client_t *client = mongoc_client_new_from_uri_with_error(uri, &error);
    cr_assert_not_null(client, "cannot create a client for %s: %s", url, error.message);
    mongoc_uri_destroy(uri);
    return client;
}

static void run_command_ok(mongoc_client_t *client, const char *name)
{
    bson_t *cmd = BCON_NEW(name, BCON_INT32(1));
    bson_t reply;
    bson_error_t error;
    bool ok = mongoc_client_command_simple(client, "admin", cmd, NULL, &reply, &error);
    cr_assert(ok, "%s failed: %s", name, error.message);
    bson_iter_t it;
    cr_assert(bson_iter_init_find(&it, &reply, "ok"), "%s: no ok field", name);
    cr_assert_eq(bson_iter_as_double(&it), 1.0, "%s: ok is not 1", name);
    bson_destroy(&reply);
    bson_destroy(cmd);
}

Test(smoke_mongo, hello_ping, .init = setup, .fini = teardown, .timeout = 20)
{
    mongoc_client_t *client = connect_from_env();
    run_command_ok(client, "hello");
    run_command_ok(client, "ping");
    mongoc_client_destroy(client);
}

Test(smoke_mongo, insert_find, .init = setup, .fini = teardown, .timeout = 20)
{
    mongoc_client_t *client = connect_from_env();
    mongoc_collection_t *coll = mongoc_client_get_collection(client, "ringscope", "smoke");
    bson_error_t error;

    /* The test server only accepts ObjectId values for _id. */
    bson_oid_t oid;
    bson_oid_init(&oid, NULL);
    bson_t *doc = BCON_NEW("_id", BCON_OID(&oid), "key", BCON_UTF8("smoke"), "pid", BCON_INT64(getpid()));
    cr_assert(mongoc_collection_insert_one(coll, doc, NULL, NULL, &error), "insert_one: %s", error.message);

    bson_t *filter = BCON_NEW("_id", BCON_OID(&oid));
    mongoc_cursor_t *cursor = mongoc_collection_find_with_opts(coll, filter, NULL, NULL);
    const bson_t *found;
    cr_assert(mongoc_cursor_next(cursor, &found), "the inserted document was not found");
    bson_iter_t it;
    cr_assert(bson_iter_init_find(&it, found, "key") && BSON_ITER_HOLDS_UTF8(&it), "no key field");
    cr_assert_str_eq(bson_iter_utf8(&it, NULL), "smoke");
    /* MongoDB keeps the int64; the test server keeps integers as JavaScript
     * numbers and answers int32 when the value fits. */
    cr_assert(bson_iter_init_find(&it, found, "pid") && BSON_ITER_HOLDS_NUMBER(&it), "no numeric pid field");
    cr_assert_eq(bson_iter_as_int64(&it), (int64_t)getpid());
    cr_assert_not(mongoc_cursor_next(cursor, &found), "more than one document matched");
    cr_assert_not(mongoc_cursor_error(cursor, &error), "cursor: %s", error.message);
    mongoc_cursor_destroy(cursor);

    cr_assert(mongoc_collection_delete_one(coll, filter, NULL, NULL, &error), "delete_one: %s", error.message);
    bson_destroy(filter);
    bson_destroy(doc);
    mongoc_collection_destroy(coll);
    mongoc_client_destroy(client);
}
