/*
 * A C host of libmgkeepalive, compiled against include/mgkeepalive.h with -Wall -Werror:
 * proves the header is usable from C and the library behaves as documented.
 *
 *   abi_smoke <emulator-base-url> <active-call-id> <ended-call-id>
 *
 * The emulator must have the app c-tenant/c-app (secret c-secret) registered and its next token
 * answer scripted to announce `"expires_in":1e300` (tests/run-all.sh does both): the sign-in must
 * still end, with a usable token.
 *
 * Every wait is bounded: blocking calls by a 20 s ClientTimeout, operations by WAIT_LIMIT_MS, so
 * a hang in the library fails this host instead of stalling it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mgkeepalive.h"

#ifndef MGKA_EXPECTED_VERSION
#error "compile with -DMGKA_EXPECTED_VERSION='\"x.y.z\"' (the crate version)"
#endif

static int passed, failed;

/* The longest an operation may stay pending here; the library's own timeouts are far shorter. */
#define WAIT_LIMIT_MS 30000
#define WAIT_SLICE_MS 50

/* Waits for an operation in slices, as interruptible hosts do, but never longer than
 * WAIT_LIMIT_MS: then it cancels the operation and answers MGKA_STATUS_PENDING. */
static MgkaStatus wait_bounded(uint64_t op, char **json) {
    for (int waited = 0; waited < WAIT_LIMIT_MS; waited += WAIT_SLICE_MS) {
        MgkaStatus status = mgka_operation_wait(op, WAIT_SLICE_MS, json);
        if (status != MGKA_STATUS_PENDING) return status;
    }
    fprintf(stderr, "  operation %llu still pending after %d ms\n", (unsigned long long)op, WAIT_LIMIT_MS);
    mgka_operation_cancel(op);
    return MGKA_STATUS_PENDING;
}

#define CHECK(cond, what)                                                   \
    do {                                                                    \
        if (cond) {                                                         \
            passed++;                                                       \
        } else {                                                            \
            failed++;                                                       \
            fprintf(stderr, "FAIL %s:%d: %s\n", __FILE__, __LINE__, what);  \
        }                                                                   \
    } while (0)

/* Checks a status and that the JSON answer contains `needle`, then frees the JSON. */
static void expect(MgkaStatus got, MgkaStatus want, char *json, const char *needle, const char *what) {
    int ok = got == want && json != NULL && (needle == NULL || strstr(json, needle) != NULL);
    if (!ok) fprintf(stderr, "  %s: status %u (want %u), json %s\n", what, (unsigned)got, (unsigned)want, json ? json : "(null)");
    CHECK(ok, what);
    mgka_string_free(json);
}

/* Evaluates `call` (which writes `json`) before looking at `json`: argument order is unspecified. */
#define EXPECT(call, want, needle, what)          \
    do {                                          \
        json = NULL;                              \
        MgkaStatus status_ = (call);              \
        expect(status_, want, json, needle, what); \
        json = NULL;                              \
    } while (0)

int main(int argc, char **argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: %s <emulator-url> <active-call-id> <ended-call-id>\n", argv[0]);
        return 2;
    }
    const char *url = argv[1], *active = argv[2], *ended = argv[3];
    char *json = NULL;
    char request[512];

    CHECK(strcmp(mgka_version(), MGKA_EXPECTED_VERSION) == 0, "mgka_version is the crate version");
    mgka_string_free(NULL);
    /* Bounds every blocking call below (token requests, keep-alives, their retries). */
    EXPECT(mgka_request_context_set("{\"clientTimeoutMs\":20000}", &json), MGKA_STATUS_OK, "\"clientTimeoutMs\":20000", "client timeout");

    EXPECT(mgka_keep_alive_by_id(active, NULL, &json), MGKA_STATUS_NOT_CONNECTED,
           "Authentication needed. Please call Connect-MgGraph.", "not connected");
    EXPECT(mgka_keep_alive_by_id(NULL, NULL, &json), MGKA_STATUS_NULL_POINTER, "NullPointer", "NULL call id");
    CHECK(mgka_keep_alive_by_id("\xff\xfe", NULL, NULL) == MGKA_STATUS_INVALID_UTF8, "invalid UTF-8");

    snprintf(request, sizeof request, "{\"name\":\"CEmulator\",\"azureADEndpoint\":\"%s\",\"graphEndpoint\":\"%s\"}", url, url);
    EXPECT(mgka_environment_add(request, &json), MGKA_STATUS_OK, "User-defined", "environment add");
    const char *token = "c-host-token";
    EXPECT(mgka_connect("{\"authType\":\"AccessToken\",\"environment\":\"CEmulator\"}", (const uint8_t *)token, strlen(token), &json),
           MGKA_STATUS_OK, "UserProvidedAccessToken", "connect");

    EXPECT(mgka_keep_alive_by_id(active, NULL, &json), MGKA_STATUS_OK, "\"httpStatus\":200", "keep alive by id");
    /* The single keep-alive through a stream: open, push the call id (UTF-16), settle, close. */
    uint64_t stream = 0;
    uint16_t units[128];
    size_t length = strlen(active) < 128 ? strlen(active) : 128;
    for (size_t i = 0; i < length; i++) units[i] = (uint16_t)(unsigned char)active[i];
    json = NULL;
    CHECK(mgka_keep_alive_stream_open("{\"apiVersion\":\"v1.0\"}", NULL, &stream, &json) == MGKA_STATUS_OK && stream != 0 && json == NULL,
          "stream open");
    CHECK(mgka_keep_alive_stream_push(stream, MGKA_ITEM_CALL_ID, units, length, NULL, 0, 0, &json) == MGKA_STATUS_OK && json == NULL,
          "stream push");
    CHECK(mgka_keep_alive_stream_settle(stream, 10000) == MGKA_STATUS_OK, "stream settle: kept alive in one call");
    CHECK(mgka_keep_alive_stream_close(stream) == MGKA_STATUS_OK, "stream close");
    snprintf(request, sizeof request, "{\"callId\":\"%s\"}", active);
    EXPECT(mgka_keep_alive_by_identity(request, "{\"apiVersion\":\"beta\"}", &json), MGKA_STATUS_OK, "/beta/", "keep alive by identity (beta)");
    EXPECT(mgka_keep_alive_by_id(ended, NULL, &json), MGKA_STATUS_GRAPH_ERROR, "\"httpStatus\":404", "ended call is 404");
    EXPECT(mgka_keep_alive_by_identity("{\"UserId\":\"u\"}", NULL, &json), MGKA_STATUS_INVALID_ARGUMENT,
           "InputObject has null value for InputObject.CallId", "identity without CallId");

    uint64_t op = 0;
    CHECK(mgka_keep_alive_by_id_start(active, NULL, &op) == MGKA_STATUS_OK && op != 0, "start");
    EXPECT(wait_bounded(op, &json), MGKA_STATUS_OK, "\"httpStatus\":200", "operation result");
    CHECK(mgka_operation_wait(op, 0, NULL) == MGKA_STATUS_INVALID_HANDLE, "handle released after the result");
    CHECK(mgka_operation_cancel(op) == MGKA_STATUS_INVALID_HANDLE, "cancel of a released handle");

    /* A token endpoint announcing an absurd lifetime: the sign-in ends (3 s timeout), and works. */
    const char *secret = "c-secret";
    CHECK(mgka_connect_start("{\"authType\":\"ClientSecret\",\"environment\":\"CEmulator\",\"tenantId\":\"c-tenant\","
                             "\"clientId\":\"c-app\",\"timeoutMs\":3000}",
                             (const uint8_t *)secret, strlen(secret), &op) == MGKA_STATUS_OK,
          "connect start");
    EXPECT(wait_bounded(op, &json), MGKA_STATUS_OK, "\"tokenCredentialType\":\"ClientSecret\"", "sign-in with expires_in 1e300 ends");
    EXPECT(mgka_keep_alive_by_id(active, NULL, &json), MGKA_STATUS_OK, "\"httpStatus\":200", "keep alive with that token");

    EXPECT(mgka_disconnect(&json), MGKA_STATUS_OK, "CEmulator", "disconnect");
    EXPECT(mgka_context(&json), MGKA_STATUS_OK, "null", "context after disconnect");

    printf("c-abi: %d passed, %d failed\n", passed, failed);
    return failed == 0 ? 0 : 1;
}
