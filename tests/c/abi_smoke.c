/*
 * A C host of libmgkeepalive, compiled against include/mgkeepalive.h with -Wall -Werror:
 * proves the header is usable from C and the library behaves as documented.
 *
 *   abi_smoke <emulator-base-url> <active-call-id> <ended-call-id>
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mgkeepalive.h"

#ifndef MGKA_EXPECTED_VERSION
#error "compile with -DMGKA_EXPECTED_VERSION='\"x.y.z\"' (the crate version)"
#endif

static int passed, failed;

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
    snprintf(request, sizeof request, "{\"callId\":\"%s\"}", active);
    EXPECT(mgka_keep_alive_by_identity(request, "{\"apiVersion\":\"beta\"}", &json), MGKA_STATUS_OK, "/beta/", "keep alive by identity (beta)");
    EXPECT(mgka_keep_alive_by_id(ended, NULL, &json), MGKA_STATUS_GRAPH_ERROR, "\"httpStatus\":404", "ended call is 404");
    EXPECT(mgka_keep_alive_by_identity("{\"UserId\":\"u\"}", NULL, &json), MGKA_STATUS_INVALID_ARGUMENT,
           "InputObject has null value for InputObject.CallId", "identity without CallId");

    uint64_t op = 0;
    CHECK(mgka_keep_alive_by_id_start(active, NULL, &op) == MGKA_STATUS_OK && op != 0, "start");
    MgkaStatus status;
    while ((status = mgka_operation_wait(op, 50, &json)) == MGKA_STATUS_PENDING) {
    }
    expect(status, MGKA_STATUS_OK, json, "\"httpStatus\":200", "operation result");
    json = NULL;
    CHECK(mgka_operation_wait(op, 0, NULL) == MGKA_STATUS_INVALID_HANDLE, "handle released after the result");
    CHECK(mgka_operation_cancel(op) == MGKA_STATUS_INVALID_HANDLE, "cancel of a released handle");

    EXPECT(mgka_disconnect(&json), MGKA_STATUS_OK, "CEmulator", "disconnect");
    EXPECT(mgka_context(&json), MGKA_STATUS_OK, "null", "context after disconnect");

    printf("c-abi: %d passed, %d failed\n", passed, failed);
    return failed == 0 ? 0 : 1;
}
