-- wrk script for bench/proxy.sh: the same POST a Sobot client sends. X-Sobot-Tenant comes from
-- wrk -H; the client key comes from the environment (PROXYBENCH_AUTH), so that it never appears
-- in a process list.
wrk.method = "POST"
wrk.body = '{"page_no":1,"page_size":20}'
wrk.headers["Content-Type"] = "application/json"
local auth = os.getenv("PROXYBENCH_AUTH")
if auth ~= nil and auth ~= "" then
    wrk.headers["Authorization"] = "Bearer " .. auth
end
