local m = require "mod"
target "a" { inherits = { "b" }, labels = { x = kiln.read_file("data.txt") } }
target "b" (m.base)
group "default" { "a" }
builder "remote" { addr = "tcp://h:1234", platforms = { "linux/arm64" }, max_jobs = 2 }
if kiln.exists("nope") then error("x") end
for k, v in pairs({ z = 1, a = 2, [3] = 4 }) do print(k, v) end
