local ok = pcall(function() return io.open("/etc/passwd") end)
local f = load("return 1", "x", "b") ; local r = kiln.read_file("../../etc/passwd")
target(os.getenv("KILN_FUZZ_ENV")) { platforms = { "linux/amd64", "linux/arm64" }, contexts = { d = "target:other" } }
target "other" { output = { "type=local,dest=out" }, secrets = { "id=a,env=B" }, ssh = { "default" } }
