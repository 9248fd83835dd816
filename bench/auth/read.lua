-- Reads by id, random among IDS (one id per line), with TOKEN as a bearer
-- token when set.
local ids = {}
for line in io.lines(os.getenv("IDS")) do ids[#ids + 1] = line end
local prefix = os.getenv("PREFIX") or "/fhir/Patient/"
local token = os.getenv("TOKEN") or ""
local headers = {}
if token ~= "" then headers["Authorization"] = "Bearer " .. token end
request = function()
  return wrk.format("GET", prefix .. ids[math.random(#ids)], headers)
end
