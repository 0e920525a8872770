/* SPDX-License-Identifier: MIT */
#include "dmm-usb.h"

void sim_dmm_usb_profile(sim_usbtmc_profile *ret)
{
        *ret = (sim_usbtmc_profile){
                .vendor = SIM_DMM_VENDOR,
                .product = SIM_DMM_PRODUCT,
                .interface = 0,
                .protocol = 1, /* USB488 */
                .ep_out = SIM_DMM_EP_OUT,
                .ep_in = SIM_DMM_EP_IN,
                .ep_interrupt = 0,
                .max_packet = SIM_DMM_MAX_PACKET,
                .bcd_usbtmc = 0x0100,
                .bcd_usb488 = 0x0100,
                .interface_caps = SIM_CAP_INDICATOR_PULSE,
                .device_caps = SIM_CAP_TERM_CHAR,
                .usb488_interface_caps = SIM_CAP_REN_GTL_LLO,
                .usb488_device_caps = SIM_CAP_RL1,
        };
}

static void execute(void *inst, const char *msg, size_t len)
{
        sim_dmm_execute(inst, msg, len);
}

static size_t output_pending(const void *inst)
{
        return sim_dmm_output_pending(inst);
}

static size_t output_take(void *inst, uint8_t *buf, size_t cap)
{
        return sim_dmm_output_take(inst, buf, cap);
}

static size_t output_peek(const void *inst, uint8_t *buf, size_t cap)
{
        return sim_dmm_output_peek(inst, buf, cap);
}

static unsigned output_ready_in_ms(const void *inst)
{
        return sim_dmm_output_ready_in_ms(inst);
}

static void query_unterminated(void *inst)
{
        sim_dmm_query_unterminated(inst);
}

static void device_clear(void *inst)
{
        sim_dmm_device_clear(inst);
}

static uint8_t status_byte(void *inst)
{
        return sim_dmm_status_byte(inst);
}

const sim_instrument sim_dmm_instrument = {
        .execute = execute,
        .output_pending = output_pending,
        .output_take = output_take,
        .output_peek = output_peek,
        .output_ready_in_ms = output_ready_in_ms,
        .query_unterminated = query_unterminated,
        .device_clear = device_clear,
        .status_byte = status_byte,
        .trigger = NULL, /* no USB488 TRIGGER: *TRG over the message channel only */
};

tether_ret_t sim_dmm_usbtmc_new(sim_dmm *dmm, sim_usbtmc **ret)
{
        sim_usbtmc_profile p;
        sim_dmm_usb_profile(&p);
        return sim_usbtmc_create(&p, &sim_dmm_instrument, dmm, ret);
}
