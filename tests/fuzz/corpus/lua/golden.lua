-- tests/lua/golden/kiln.lua: the script of the `kiln print` golden test
-- (tests/lua/run.sh): a 3x3 matrix with one exclude and one include, two
-- groups (one nested in the other) and a chain of inherits.

local registry = kiln.env("KILN_TEST_REGISTRY", "localhost:5000")

-- Templates: names starting with '_' are not listed by `kiln ls`.
target "_base" {
  context = "app",
  args = { BASE_REGISTRY = registry, COMMIT = "unknown" },
  labels = { ["org.opencontainers.image.vendor"] = "kiln" },
  cache_from = { "type=registry,ref=" .. registry .. "/cache:base" },
  platforms = { "linux/amd64" },
  secrets = { "id=token,src=token.txt" },
}

target "_release" {
  inherits = { "_base" },
  description = "A release image",
  args = { COMMIT = kiln.vars.commit or "dev" },            -- replaces _base's COMMIT
  cache_from = { "type=registry,ref=" .. registry .. "/cache:release" }, -- added to _base's
  secrets = { "id=token,env=TOKEN" },                       -- replaces the secret of that id
  output = { "type=image,push=true" },
}

local images = {}
for _, c in ipairs(matrix {
  os = { "alpine", "debian", "ubuntu" },
  version = { "1.0", "1.1", "2.0" },
  exclude = { { os = "alpine", version = "1.0" } },
  include = {
    { os = "debian", version = "2.0", variant = "slim" }, -- adds a key to one combination
    { os = "windows", version = "2.0" },                  -- matches none: a new combination
  },
}) do
  local name = "app-" .. c.os .. "-" .. c.version
  images[#images + 1] = name
  target(name) {
    inherits = { "_release" },
    dockerfile = c.os == "windows" and "Dockerfile.windows" or nil,
    args = { OS = c.os, VERSION = c.version, VARIANT = c.variant },
    tags = { registry .. "/app:" .. c.version .. "-" .. c.os .. (c.variant and "-" .. c.variant or "") },
    platforms = c.os ~= "windows" and { "linux/amd64", "linux/arm64" } or nil,
  }
end

target "tools" {
  description = "Build tools",
  context = "tools",
  target = "final",
  depends = { "app-debian-2.0" },
  contexts = { app = "target:app-debian-2.0", vendor = "./third_party" },
  no_cache = true,
  pull = false,
  network = "host",
  ssh = { "default" },
}

group "images" { description = "Every image of the matrix", table.unpack(images) }
group "default" { "images", "tools" }
