-- A minimal Neovim config for vmdesc: `nvim -u editors/nvim/init.lua file.vmdesc`
-- (or copy the two statements below into your own init.lua).
-- VMDESC_LSP_CMD overrides the server command (a shell-style string), e.g.
--   VMDESC_LSP_CMD="deno run -A /path/to/vmdesc/cli/vmdesc.ts lsp --stdio"
local here = debug.getinfo(1, "S").source:sub(2):match("(.*/)") or "./"
vim.opt.runtimepath:prepend(here)
vim.cmd("filetype plugin on")
vim.cmd("syntax on")

local cmd = nil
local env = os.getenv("VMDESC_LSP_CMD")
if env and env ~= "" then cmd = vim.split(env, "%s+", { trimempty = true }) end

require("vmdesc").setup({ cmd = cmd })
