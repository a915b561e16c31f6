/*
 * notify.node: sends one datagram to the service manager's notification socket (sd_notify(3)'s
 * protocol: "READY=1", "STATUS=...", "STOPPING=1"), from the proxy's own process. Node has no Unix
 * datagram sockets, and a helper process would be another sender than the service's main process,
 * which systemd ignores unless NotifyAccess=all.
 *
 * A Node-API addon with no build dependency: the few Node-API functions it calls are declared here
 * (their ABI is stable), and node resolves them when it loads the file. Built by
 * scripts/build-native.mjs with the system C compiler, as rebind.c is.
 *
 * JavaScript: send(path, message) returns 0, or the errno of the failure. A path beginning with '@' is
 * an abstract socket name.
 */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

typedef struct napi_env__ *napi_env;
typedef struct napi_value__ *napi_value;
typedef struct napi_callback_info__ *napi_callback_info;
typedef int napi_status; /* napi_ok is 0 */
typedef napi_value (*napi_callback)(napi_env env, napi_callback_info info);

extern napi_status napi_get_cb_info(napi_env env, napi_callback_info info, size_t *argc, napi_value *argv,
                                    napi_value *this_arg, void **data);
extern napi_status napi_get_value_string_utf8(napi_env env, napi_value value, char *buf, size_t bufsize, size_t *result);
extern napi_status napi_create_int32(napi_env env, int32_t value, napi_value *result);
extern napi_status napi_create_function(napi_env env, const char *utf8name, size_t length, napi_callback cb, void *data,
                                        napi_value *result);
extern napi_status napi_set_named_property(napi_env env, napi_value object, const char *utf8name, napi_value value);

/* Longest message sent: systemd reads up to its pipe buffer; ours are a few dozen bytes. */
#define MAX_MESSAGE 4096

static int send_datagram(const char *path, size_t path_length, const char *message, size_t message_length) {
    struct sockaddr_un address;
    memset(&address, 0, sizeof address);
    address.sun_family = AF_UNIX;
    if (path_length == 0) return EINVAL;
    if (path_length >= sizeof address.sun_path) return ENAMETOOLONG;
    memcpy(address.sun_path, path, path_length);
    /* An abstract name: a NUL first, and the length counts exactly its bytes. */
    if (path[0] == '@') address.sun_path[0] = '\0';
    socklen_t length = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + path_length + (path[0] == '@' ? 0 : 1));
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return errno;
    int result = 0;
    if (sendto(fd, message, message_length, MSG_NOSIGNAL, (struct sockaddr *)&address, length) < 0) result = errno;
    close(fd);
    return result;
}

static napi_value send_notification(napi_env env, napi_callback_info info) {
    size_t argc = 2;
    napi_value argv[2];
    char path[sizeof(((struct sockaddr_un *)0)->sun_path) + 1];
    char message[MAX_MESSAGE + 1];
    size_t path_length = 0, message_length = 0;
    int result;
    if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != 0 || argc < 2 ||
        napi_get_value_string_utf8(env, argv[0], path, sizeof path, &path_length) != 0 ||
        napi_get_value_string_utf8(env, argv[1], message, sizeof message, &message_length) != 0) {
        result = EINVAL;
    } else if (message_length >= MAX_MESSAGE) {
        result = EMSGSIZE;
    } else {
        result = send_datagram(path, path_length, message, message_length);
    }
    napi_value value = NULL;
    napi_create_int32(env, result, &value);
    return value;
}

/* What NAPI_MODULE_INIT declares: node calls it when the file is loaded. */
__attribute__((visibility("default"))) napi_value napi_register_module_v1(napi_env env, napi_value exports) {
    napi_value function;
    if (napi_create_function(env, "send", 4, send_notification, NULL, &function) != 0) return NULL;
    if (napi_set_named_property(env, exports, "send", function) != 0) return NULL;
    return exports;
}

/* The Node-API version this addon was written for (node asks, and assumes 8 when it is missing). */
__attribute__((visibility("default"))) int32_t node_api_module_get_api_version_v1(void) { return 8; }
