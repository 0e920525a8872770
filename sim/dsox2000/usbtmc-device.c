/* SPDX-License-Identifier: MIT */
#include "usbtmc-device.h"

#include "vusb-server.h"

void sim_scope_usb_profile(const sim_model *model, sim_usbtmc_profile *ret)
{
        *ret = (sim_usbtmc_profile){
                .vendor = SIM_VUSB_VENDOR,
                .product = (model ? model : sim_model_default())->usb_product,
                .interface = 0,
                .protocol = 1, /* USB488 */
                .ep_out = SIM_VUSB_EP_OUT,
                .ep_in = SIM_VUSB_EP_IN,
                .ep_interrupt = SIM_USBTMC_EP_INTERRUPT,
                .max_packet = SIM_VUSB_MAX_PACKET,
                .bcd_usbtmc = 0x0100,
                .bcd_usb488 = 0x0100,
                .usb488_interface_caps = SIM_CAP_488_2 | SIM_CAP_REN_GTL_LLO | SIM_CAP_TRIGGER,
                .usb488_device_caps = SIM_CAP_SCPI | SIM_CAP_SR1 | SIM_CAP_RL1 | SIM_CAP_DT1,
        };
}

static void execute(void *inst, const char *msg, size_t len)
{
        sim_scope_execute(inst, msg, len);
}

static size_t output_pending(const void *inst)
{
        return sim_scope_output_pending(inst);
}

static size_t output_take(void *inst, uint8_t *buf, size_t cap)
{
        return sim_scope_output_take(inst, buf, cap);
}

static unsigned output_ready_in_ms(const void *inst)
{
        return sim_scope_output_ready_in_ms(inst);
}

static void query_unterminated(void *inst)
{
        sim_scope_query_unterminated(inst);
}

static void device_clear(void *inst)
{
        sim_scope_device_clear(inst);
}

static uint8_t status_byte(void *inst)
{
        return sim_scope_status_byte(inst);
}

/* A Group Execute Trigger: the scope has nothing waiting for one. */
static void trigger(void *inst)
{
}

const sim_instrument sim_scope_instrument = {
        .execute = execute,
        .output_pending = output_pending,
        .output_take = output_take,
        .output_ready_in_ms = output_ready_in_ms,
        .query_unterminated = query_unterminated,
        .device_clear = device_clear,
        .status_byte = status_byte,
        .trigger = trigger,
};

int sim_usbtmc_new(sim_scope *scope, sim_usbtmc **ret)
{
        sim_usbtmc_profile p;
        sim_scope_usb_profile(sim_scope_model(scope), &p);
        return sim_usbtmc_create(&p, &sim_scope_instrument, scope, ret) == TETHER_SUCCESS ? 0 : -1;
}

tether_ret_t sim_vusb_info(const char *serial, vusb_info *ret)
{
        sim_usbtmc_profile p;
        sim_scope_usb_profile(NULL, &p);
        return sim_vusb_profile_info(&p, serial, ret);
}
