/* SPDX-License-Identifier: MIT */
#include <tether/return.h>

#include <stddef.h>

struct ret_desc {
        tether_ret_t code;
        const char *name;
        const char *text;
};

/* Names are I/O Kit's (kIOReturn<Name>) so logs can be searched for either. */
static const struct ret_desc descs[] = {
        { TETHER_SUCCESS, "Success", "success" },
        { TETHER_ERR_INVALID, "Invalid", "invalid" },
        { TETHER_ERR_ERROR, "Error", "general error" },
        { TETHER_ERR_NO_MEMORY, "NoMemory", "cannot allocate memory" },
        { TETHER_ERR_NO_RESOURCES, "NoResources", "resource shortage" },
        { TETHER_ERR_IPC, "IPCError", "error talking to tetherd" },
        { TETHER_ERR_NO_DEVICE, "NoDevice", "no such device" },
        { TETHER_ERR_NOT_PRIVILEGED, "NotPrivileged", "privilege violation" },
        { TETHER_ERR_BAD_ARGUMENT, "BadArgument", "invalid argument" },
        { TETHER_ERR_LOCKED_READ, "LockedRead", "device read locked" },
        { TETHER_ERR_LOCKED_WRITE, "LockedWrite", "device write locked" },
        { TETHER_ERR_EXCLUSIVE_ACCESS, "ExclusiveAccess", "exclusive access and device already open" },
        { TETHER_ERR_BAD_MESSAGE_ID, "BadMessageID", "sent/received messages had different msg_id" },
        { TETHER_ERR_UNSUPPORTED, "Unsupported", "unsupported function" },
        { TETHER_ERR_VM, "VMError", "misc. VM failure" },
        { TETHER_ERR_INTERNAL, "InternalError", "internal error" },
        { TETHER_ERR_IO, "IOError", "general I/O error" },
        { TETHER_ERR_CANNOT_LOCK, "CannotLock", "cannot acquire lock" },
        { TETHER_ERR_NOT_OPEN, "NotOpen", "device not open" },
        { TETHER_ERR_NOT_READABLE, "NotReadable", "read not supported" },
        { TETHER_ERR_NOT_WRITABLE, "NotWritable", "write not supported" },
        { TETHER_ERR_NOT_ALIGNED, "NotAligned", "alignment error" },
        { TETHER_ERR_STILL_OPEN, "StillOpen", "device(s) still open" },
        { TETHER_ERR_BUSY, "Busy", "device busy" },
        { TETHER_ERR_TIMEOUT, "Timeout", "i/o timeout" },
        { TETHER_ERR_OFFLINE, "Offline", "device offline" },
        { TETHER_ERR_NOT_READY, "NotReady", "not ready" },
        { TETHER_ERR_NOT_ATTACHED, "NotAttached", "device not attached" },
        { TETHER_ERR_NO_SPACE, "NoSpace", "no space for data" },
        { TETHER_ERR_CANNOT_WIRE, "CannotWire", "cannot wire down physical memory" },
        { TETHER_ERR_MESSAGE_TOO_LARGE, "MessageTooLarge", "message too large" },
        { TETHER_ERR_NOT_PERMITTED, "NotPermitted", "not permitted" },
        { TETHER_ERR_UNDERRUN, "Underrun", "data underrun" },
        { TETHER_ERR_OVERRUN, "Overrun", "data overrun" },
        { TETHER_ERR_DEVICE_ERROR, "DeviceError", "the device is not working properly" },
        { TETHER_ERR_NO_COMPLETION, "NoCompletion", "a completion routine is required" },
        { TETHER_ERR_ABORTED, "Aborted", "operation aborted" },
        { TETHER_ERR_NOT_RESPONDING, "NotResponding", "device not responding" },
        { TETHER_ERR_NOT_FOUND, "NotFound", "data was not found" },
};

static const struct ret_desc *find(tether_ret_t ret)
{
        for (size_t i = 0; i < sizeof(descs) / sizeof(descs[0]); i++)
                if (descs[i].code == ret)
                        return &descs[i];
        return NULL;
}

const char *tether_strerror(tether_ret_t ret)
{
        const struct ret_desc *d = find(ret);
        return d ? d->text : "unknown error";
}

const char *tether_ret_name(tether_ret_t ret)
{
        const struct ret_desc *d = find(ret);
        return d ? d->name : "Unknown";
}

uint32_t tether_ret_to_ioreturn(tether_ret_t ret)
{
        if (ret == TETHER_SUCCESS)
                return 0;
        return 0xE0000000u | ((uint32_t)-(int64_t)ret & 0x3fffu);
}
