/* SPDX-License-Identifier: MIT */
/*
 * tether-example: an application using ExampleDriver, the way a macOS
 * application uses its driver through IOKitLib. Read top to bottom:
 * find the service, read and write a property, open a connection, call
 * the article's method through both KPIs, map shared memory.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <tether/tether.h>

#include "example/example.h"

static int fail(const char *what, tether_ret_t r)
{
        fprintf(stderr, "tether-example: %s: %s (%s, 0x%08x)\n", what, tether_strerror(r), tether_ret_name(r),
                tether_ret_to_ioreturn(r));
        return 1;
}

static void print_bytes(const char *label, const uint8_t *b, size_t n)
{
        printf("  %s (%zu bytes):", label, n);
        for (size_t i = 0; i < n; i++)
                printf(" %02x", b[i]);
        printf("\n");
}

int main(int argc, char **argv)
{
        tether_session *s = NULL;
        tether_ret_t r = tether_session_open(argc > 1 ? argv[1] : NULL, &s);
        if (r != TETHER_SUCCESS)
                return fail("cannot reach tetherd", r);

        /* IOServiceGetMatchingService(IOServiceMatching("ExampleDriver")) */
        tether_value *matching = NULL;
        uint64_t svc = 0;
        r = tether_service_matching("ExampleDriver", &matching);
        if (r == TETHER_SUCCESS)
                r = tether_get_matching_service(s, matching, &svc);
        tether_value_unref(matching);
        if (r != TETHER_SUCCESS)
                return fail("no ExampleDriver in the registry", r);
        char *path = NULL;
        if (tether_registry_entry_get_path(s, svc, &path) == TETHER_SUCCESS)
                printf("found %s (id 0x%" PRIx64 ")\n", path, svc);
        free(path);

        /* The simple channel: properties. */
        tether_value *props = NULL;
        char *text = NULL;
        if (tether_registry_entry_get_properties(s, svc, &props) == TETHER_SUCCESS &&
            tether_value_format(props, &text) == TETHER_SUCCESS)
                printf("properties: %s\n", text);
        free(text);
        tether_value_unref(props);

        tether_value *change = NULL;
        tether_value_new_dict(&change);
        tether_value_dict_set_uint(change, EXAMPLE_PROP_BAUD_RATE, 115200, 32);
        r = tether_registry_entry_set_properties(s, svc, change);
        printf("set BaudRate = 115200: %s\n", tether_strerror(r));
        tether_value_dict_set_uint(change, EXAMPLE_PROP_BAUD_RATE, 12345, 32);
        r = tether_registry_entry_set_properties(s, svc, change);
        printf("set BaudRate = 12345: %s (the driver refuses non-standard rates)\n", tether_strerror(r));
        tether_value_unref(change);

        /* The connection channel: one user client per open. */
        tether_connect *c = NULL, *legacy = NULL;
        r = tether_service_open(s, svc, EXAMPLE_CLIENT, 0, &c);
        if (r != TETHER_SUCCESS)
                return fail("open", r);
        r = tether_service_open(s, svc, EXAMPLE_CLIENT_LEGACY, 0, &legacy);
        if (r != TETHER_SUCCESS)
                return fail("open (legacy)", r);

        /* MyMethod: two scalars in, a variable-size struct out. */
        uint64_t in[2] = { 0x10, 8 };
        uint8_t out[64];
        size_t out_size = sizeof(out);
        r = tether_call_method(c, EXAMPLE_MY_METHOD, in, 2, NULL, 0, NULL, NULL, out, &out_size);
        if (r != TETHER_SUCCESS)
                return fail("MyMethod", r);
        printf("MyMethod(0x10, 8), new KPI:\n");
        print_bytes("struct out", out, out_size);

        out_size = sizeof(out);
        r = tether_call_method(legacy, EXAMPLE_LEGACY_MY_METHOD, in, 2, NULL, 0, NULL, NULL, out, &out_size);
        if (r != TETHER_SUCCESS)
                return fail("MyMethod (legacy)", r);
        printf("MyMethod(0x10, 8), legacy KPI:\n");
        print_bytes("struct out", out, out_size);

        /* The framework checks calls against the table before the driver runs. */
        uint64_t three[3] = { 1, 2, 3 }, sum = 0;
        uint32_t n_out = 1;
        r = tether_call_scalar_method(c, EXAMPLE_ADD, three, 3, &sum, &n_out);
        printf("Add with 3 scalars (the table says 2): %s\n", tether_strerror(r));
        r = tether_call_scalar_method(c, EXAMPLE_SELECTOR_COUNT + 5, NULL, 0, NULL, NULL);
        printf("selector %d (past the table): %s\n", EXAMPLE_SELECTOR_COUNT + 5, tether_strerror(r));
        n_out = 1;
        r = tether_call_scalar_method(c, EXAMPLE_GET_BAUD_RATE, NULL, 0, &sum, &n_out);
        printf("GetBaudRate (runs on the provider): %" PRIu64 "\n", sum);

        /* Shared memory: the driver fills it, we read it in place. */
        void *mem = NULL;
        size_t mem_size = 0;
        r = tether_map_memory(c, EXAMPLE_MEMORY_BUFFER, 0, &mem, &mem_size);
        if (r == TETHER_SUCCESS) {
                uint64_t fill[2] = { EXAMPLE_MEMORY_BUFFER, 0xab };
                r = tether_call_scalar_method(c, EXAMPLE_FILL_MEMORY, fill, 2, NULL, NULL);
                printf("mapped %zu MiB; after FillMemory(0xab) the last byte is 0x%02x\n", mem_size >> 20,
                       ((uint8_t *)mem)[mem_size - 1]);
                tether_unmap_memory(c, EXAMPLE_MEMORY_BUFFER, mem);
        }

        tether_service_close(legacy);
        tether_service_close(c);
        tether_session_close(s);
        return 0;
}
