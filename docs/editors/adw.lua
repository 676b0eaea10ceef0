-- ADW in Neovim 0.7 and later (docs/EDITORS.md): `dofile` it from your init.lua, or copy it there.
-- Every file of a git repository attaches to one ADW server per repository (its worktrees included); lenses sit on
-- the lines they are about and <leader>l runs the one under the cursor; :AdwScout fills the quickfix list in the
-- scout's ranking; buffers follow files an undo rewrote. tests/lsp/nvim_scenario.lua runs this file as it is.

local adw_cmd = vim.g.adw_cmd or { 'adw', 'lsp', '--stdio' }  -- `adw` on PATH, or set vim.g.adw_cmd first

local get_clients = vim.lsp.get_clients or vim.lsp.get_active_clients  -- renamed in 0.10
-- Client methods are called with `:` from 0.11 on, with `.` before.
local function call(client, method, ...)
  if vim.fn.has('nvim-0.11') == 1 then return client[method](client, ...) end
  return client[method](...)
end

local function adw_root(bufnr)
  -- The repository's main folder, so that its worktrees (…/repo.worktrees/name) share one server.
  local dir = vim.fn.fnamemodify(vim.api.nvim_buf_get_name(bufnr), ':p:h')
  local common = vim.fn.systemlist({ 'git', '-C', dir, 'rev-parse', '--path-format=absolute', '--git-common-dir' })
  if vim.v.shell_error ~= 0 or not common[1] then return nil end
  return vim.fn.fnamemodify(common[1], ':h')
end

local function adw_attach(bufnr)
  local root = vim.bo[bufnr].buftype == '' and adw_root(bufnr)
  if not root then return end
  local config = {
    name = 'adw', cmd = adw_cmd, root_dir = root,
    workspace_folders = { { uri = vim.uri_from_fname(root), name = vim.fn.fnamemodify(root, ':t') } },
    on_attach = function(_, buf)  -- lenses follow edits once the server is there; <leader>l runs the line's lens
      vim.api.nvim_create_autocmd({ 'BufEnter', 'CursorHold', 'InsertLeave', 'BufWritePost' }, {
        buffer = buf, callback = function() vim.lsp.codelens.refresh() end,
      })
      vim.keymap.set('n', '<leader>l', vim.lsp.codelens.run, { buffer = buf })
      vim.lsp.codelens.refresh()
    end,
  }
  if vim.lsp.start then  -- Neovim >= 0.8: reuses the running client of the same name and root
    vim.lsp.start(config, { bufnr = bufnr })
  else                   -- Neovim 0.7
    for _, client in pairs(get_clients()) do
      if client.name == 'adw' and client.config.root_dir == root then
        return vim.lsp.buf_attach_client(bufnr, client.id)
      end
    end
    vim.lsp.buf_attach_client(bufnr, vim.lsp.start_client(config))
  end
end

vim.api.nvim_create_autocmd({ 'BufReadPost', 'BufNewFile' }, {
  callback = function(args) adw_attach(args.buf) end,
})
-- Files an undo rewrote on disk show at once in their buffers.
vim.o.autoread = true
vim.api.nvim_create_autocmd({ 'FocusGained', 'BufEnter', 'CursorHold' }, { command = 'checktime' })

-- A scout's ranking in the quickfix list, best first (vim.lsp.util.locations_to_items would sort by file name).
local function adw_scout(task, top)
  local root = adw_root(0)
  local client = vim.tbl_filter(function(c) return c.name == 'adw' and c.config.root_dir == root end, get_clients())[1]
  if not client then return vim.notify('ADW: open a file of the repository first', vim.log.levels.ERROR) end
  call(client, 'request', 'workspace/executeCommand',
    { command = 'adw.server.scout', arguments = { task, vim.NIL, top or 10 } },
    function(err, report)
      if err then return vim.notify('ADW: ' .. err.message, vim.log.levels.ERROR) end
      local items = {}
      for rank, loc in ipairs(report.lspLocations) do
        local found = report.locations[rank]
        table.insert(items, {
          filename = vim.uri_to_fname(loc.uri), lnum = loc.range.start.line + 1,
          col = loc.range.start.character + 1, text = ('#%d %s'):format(rank, found and found.reason or ''),
        })
      end
      vim.fn.setqflist({}, ' ', { title = 'ADW scout: ' .. task, items = items })
      vim.cmd('copen')
    end, 0)
end
vim.api.nvim_create_user_command('AdwScout', function(o) adw_scout(o.args) end, { nargs = 1 })
return { scout = adw_scout, attach = adw_attach, call = call }
