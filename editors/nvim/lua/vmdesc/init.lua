-- vmdesc for Neovim's built-in LSP client (Neovim 0.7 and later).
--
--   vim.opt.runtimepath:append("/path/to/vmdesc/editors/nvim")
--   require("vmdesc").setup({ cmd = { "vmdesc", "lsp", "--stdio" } })
--
-- On 0.8+ it uses vim.lsp.start (which reuses a client per root); on 0.7 it keeps one
-- client per root itself through vim.lsp.start_client + vim.lsp.buf_attach_client.
local M = {}

M.defaults = {
  name = "vmdesc",
  cmd = { "vmdesc", "lsp", "--stdio" },
  -- The first ancestor directory holding one of these is the workspace root.
  root_markers = { "deno.json", ".git" },
  on_attach = nil,
  capabilities = nil,
  settings = {},
  flags = { debounce_text_changes = 50 },
}

M.config = nil
local clients = {} -- root_dir -> client id (0.7 path only)

local function dirname(path)
  return vim.fn.fnamemodify(path, ":h")
end

local function find_root(bufname, markers)
  local dir = dirname(vim.fn.fnamemodify(bufname, ":p"))
  local cur = dir
  while cur and cur ~= "" do
    for _, m in ipairs(markers) do
      if vim.loop.fs_stat(cur .. "/" .. m) then return cur end
    end
    local parent = dirname(cur)
    if parent == cur then break end
    cur = parent
  end
  return dir
end

local function client_config(root_dir)
  local c = M.config
  return {
    name = c.name,
    cmd = c.cmd,
    root_dir = root_dir,
    workspace_folders = { { uri = vim.uri_from_fname(root_dir), name = root_dir } },
    on_attach = c.on_attach,
    capabilities = c.capabilities or vim.lsp.protocol.make_client_capabilities(),
    settings = c.settings,
    flags = c.flags,
  }
end

--- Starts (or reuses) the server for the workspace of `bufnr` and attaches the buffer.
function M.attach(bufnr)
  bufnr = bufnr or vim.api.nvim_get_current_buf()
  local name = vim.api.nvim_buf_get_name(bufnr)
  if name == "" then return nil end
  local root = find_root(name, M.config.root_markers)
  if vim.lsp.start then
    return vim.lsp.start(client_config(root), { bufnr = bufnr })
  end
  local id = clients[root]
  if id == nil or vim.lsp.get_client_by_id(id) == nil or vim.lsp.client_is_stopped(id) then
    id = vim.lsp.start_client(client_config(root))
    if id == nil then
      vim.notify("vmdesc: could not start " .. table.concat(M.config.cmd, " "), vim.log.levels.ERROR)
      return nil
    end
    clients[root] = id
  end
  vim.lsp.buf_attach_client(bufnr, id)
  return id
end

--- Formats the current buffer through the server (0.7: formatting_sync, 0.8+: format).
function M.format(bufnr, timeout_ms)
  bufnr = bufnr or vim.api.nvim_get_current_buf()
  timeout_ms = timeout_ms or 5000
  if vim.lsp.buf.format then
    vim.lsp.buf.format({ bufnr = bufnr, timeout_ms = timeout_ms, name = M.config.name })
  else
    vim.api.nvim_buf_call(bufnr, function()
      vim.lsp.buf.formatting_sync(nil, timeout_ms)
    end)
  end
end

function M.setup(opts)
  M.config = vim.tbl_deep_extend("force", vim.deepcopy(M.defaults), opts or {})
  if opts and opts.cmd then M.config.cmd = opts.cmd end -- lists replace, not merge
  if vim.filetype and vim.filetype.add then
    vim.filetype.add({ extension = { vmdesc = "vmdesc" } })
  end
  local group = vim.api.nvim_create_augroup("vmdesc_lsp", { clear = true })
  vim.api.nvim_create_autocmd({ "BufRead", "BufNewFile" }, {
    group = group,
    pattern = "*.vmdesc",
    callback = function(args)
      if vim.bo[args.buf].filetype ~= "vmdesc" then vim.bo[args.buf].filetype = "vmdesc" end
    end,
  })
  vim.api.nvim_create_autocmd("FileType", {
    group = group,
    pattern = "vmdesc",
    callback = function(args) M.attach(args.buf) end,
  })
  vim.api.nvim_create_user_command("VmdescFormat", function() M.format() end, {})
  -- Buffers already open (setup called late) get attached too.
  for _, b in ipairs(vim.api.nvim_list_bufs()) do
    if vim.api.nvim_buf_is_loaded(b) and vim.bo[b].filetype == "vmdesc" then M.attach(b) end
  end
end

return M
