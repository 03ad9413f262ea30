-- Test driver run by tests/lsp/neovim_test.ts inside `nvim --headless --clean -u <this>`.
-- It loads the project's Neovim setup (editors/nvim) exactly as a user would, then:
--   1. opens a file with known errors, waits (bounded) for diagnostics, writes "CODE LINE"
--   2. opens a badly laid-out file, formats it through the LSP client, writes the buffer
-- and quits. Every wait is bounded; any failure is written to the result file.
local root = os.getenv("VMDESC_ROOT")
local out_path = os.getenv("VMDESC_OUT")
local errors_file = os.getenv("VMDESC_ERRORS_FILE")
local messy_file = os.getenv("VMDESC_MESSY_FILE")
-- Unset: the setup's default command, `vmdesc lsp --stdio` from PATH (an installed vmdesc).
local cmd_json = os.getenv("VMDESC_LSP_CMD_JSON")
local cmd = (cmd_json and cmd_json ~= "") and vim.fn.json_decode(cmd_json) or nil

vim.opt.runtimepath:prepend(root .. "/editors/nvim")
vim.cmd("filetype plugin on")
vim.opt.swapfile = false
vim.opt.shadafile = "NONE"

local lines = {}
local function emit(s) table.insert(lines, s) end
local function finish(code)
  vim.fn.writefile(lines, out_path)
  for _, c in ipairs(vim.lsp.get_active_clients()) do c.stop() end
  vim.wait(3000, function() return #vim.lsp.get_active_clients() == 0 end, 50)
  vim.cmd((code == 0 and "qall!" or "cquit! " .. code))
end

local function run()
  if cmd then require("vmdesc").setup({ cmd = cmd }) else require("vmdesc").setup() end

  -- 1. diagnostics
  vim.cmd("edit " .. vim.fn.fnameescape(errors_file))
  local buf = vim.api.nvim_get_current_buf()
  emit("filetype " .. vim.bo[buf].filetype)
  local ok = vim.wait(30000, function() return #vim.diagnostic.get(buf) > 0 end, 50)
  if not ok then
    emit("ERROR no diagnostics within 30 s")
    return finish(3)
  end
  -- The server publishes once per version; give a late duplicate a moment, then read.
  vim.wait(300, function() return false end, 50)
  local diags = vim.diagnostic.get(buf)
  table.sort(diags, function(a, b) return a.lnum < b.lnum or (a.lnum == b.lnum and a.col < b.col) end)
  for _, d in ipairs(diags) do
    emit(string.format("diag %s %d %d", d.code or d.user_data and d.user_data.lsp.code or "?", d.lnum + 1, d.col + 1))
  end

  -- 2. formatting through the client
  vim.cmd("edit " .. vim.fn.fnameescape(messy_file))
  local mbuf = vim.api.nvim_get_current_buf()
  local attached = vim.wait(30000, function()
    for _, c in pairs(vim.lsp.buf_get_clients(mbuf)) do
      if c.initialized ~= false and c.server_capabilities ~= nil then return true end
    end
    return false
  end, 50)
  if not attached then
    emit("ERROR no client attached to the messy buffer")
    return finish(4)
  end
  require("vmdesc").format(mbuf, 10000)
  emit("formatted-begin")
  for _, l in ipairs(vim.api.nvim_buf_get_lines(mbuf, 0, -1, false)) do emit(l) end
  emit("formatted-end")
  return finish(0)
end

vim.defer_fn(function()
  local ok, err = pcall(run)
  if not ok then
    emit("ERROR " .. tostring(err))
    finish(5)
  end
end, 0)
