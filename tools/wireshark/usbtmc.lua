-- SPDX-License-Identifier: MIT
-- USBTMC / USB488 bulk messages for Wireshark and tshark (4.0 has no
-- USBTMC dissector of its own). Load it with
--   tshark -X lua_script:usbtmc.lua -r capture.pcap
-- or copy it to ~/.local/lib/wireshark/plugins/.
--
-- It decodes the 12-byte header of every bulk transfer that starts with
-- one (MsgID, bTag/bTagInverse, TransferSize, EOM, TermChar) and shows the
-- message text, so a capture reads as the SCPI conversation it carries.
-- Found by the interface class (0xFE) when the capture has the device's
-- descriptors, else by the header's own check (bTagInverse = ~bTag).

local p = Proto("usbtmc", "USB Test and Measurement Class")

local names = {
  [1] = "DEV_DEP_MSG_OUT", [2] = "DEV_DEP_MSG_IN", [126] = "VENDOR_SPECIFIC_OUT",
  [127] = "VENDOR_SPECIFIC_IN", [128] = "TRIGGER",
}

local f = p.fields
f.msgid = ProtoField.uint8("usbtmc.msgid", "MsgID", base.DEC)
f.name = ProtoField.string("usbtmc.message", "Message")
f.btag = ProtoField.uint8("usbtmc.btag", "bTag", base.DEC)
f.btag_inverse = ProtoField.uint8("usbtmc.btag_inverse", "bTagInverse", base.HEX)
f.size = ProtoField.uint32("usbtmc.transfer_size", "TransferSize", base.DEC)
f.attributes = ProtoField.uint8("usbtmc.attributes", "bmTransferAttributes", base.HEX)
f.eom = ProtoField.bool("usbtmc.eom", "EOM", 8, nil, 0x01)
f.term_char_enabled = ProtoField.bool("usbtmc.term_char_enabled", "TermCharEnabled", 8, nil, 0x02)
f.term_char = ProtoField.uint8("usbtmc.term_char", "TermChar", base.HEX)
f.text = ProtoField.string("usbtmc.text", "Text")
f.data = ProtoField.bytes("usbtmc.data", "Data")

local direction = Field.new("usb.endpoint_address.direction")

local function is_in()
  local d = direction()
  return d ~= nil and d.value ~= 0
end

-- What a reader wants to see of a message: its text up to the first byte
-- that is not text (a waveform block shows its "#8..." length header).
local function printable_prefix(tvb, off, n)
  local i = 0
  while i < n do
    local b = tvb(off + i, 1):uint()
    if b ~= 9 and b ~= 10 and b ~= 13 and (b < 32 or b > 126) then break end
    i = i + 1
  end
  return i
end

local function header_ok(tvb)
  if tvb:len() < 12 then return false end
  local id, tag, inv = tvb(0, 1):uint(), tvb(1, 1):uint(), tvb(2, 1):uint()
  return names[id] ~= nil and tag ~= 0 and bit32.bxor(tag, inv) == 0xff and tvb(3, 1):uint() == 0
end

local function dissect(tvb, pinfo, tree)
  local id = tvb(0, 1):uint()
  local size = tvb(4, 4):le_uint()
  local inbound = is_in()
  local request = not inbound and (id == 2 or id == 127)
  local name = request and ("REQUEST_" .. names[id]) or names[id]
  local body = math.min(size, tvb:len() - 12)
  if request then body = 0 end

  local t = tree:add(p, tvb(0, 12 + body), "USBTMC " .. name)
  t:add(f.msgid, tvb(0, 1))
  t:add(f.name, name):set_generated()
  t:add(f.btag, tvb(1, 1))
  t:add(f.btag_inverse, tvb(2, 1))
  t:add_le(f.size, tvb(4, 4))
  local info = string.format("%s bTag %d %s %d", name, tvb(1, 1):uint(), request and "max" or "size", size)
  if id == 1 or id == 2 or request then
    local a = t:add(f.attributes, tvb(8, 1))
    a:add(f.eom, tvb(8, 1))
    a:add(f.term_char_enabled, tvb(8, 1))
    t:add(f.term_char, tvb(9, 1))
    if not request and bit32.band(tvb(8, 1):uint(), 1) == 1 then info = info .. " EOM" end
  end
  if body > 0 then
    local n = printable_prefix(tvb, 12, body)
    if n > 0 then
      local text = tvb(12, n):string()
      t:add(f.text, tvb(12, n), text)
      info = info .. " \"" .. text:gsub("\n", "\\n"):sub(1, 60) .. "\""
    end
    t:add(f.data, tvb(12, body))
  end
  pinfo.cols.protocol = "USBTMC"
  pinfo.cols.info = info
  return tvb:len()
end

function p.dissector(tvb, pinfo, tree)
  if not header_ok(tvb) then return 0 end
  return dissect(tvb, pinfo, tree)
end

local function heuristic(tvb, pinfo, tree)
  if not header_ok(tvb) then return false end
  dissect(tvb, pinfo, tree)
  return true
end

DissectorTable.get("usb.bulk"):add(0xfe, p)
p:register_heuristic("usb.bulk", heuristic)
