-- The user scenario in Neovim (0.7+, headless, built-in LSP client), driven by tests/lsp/test_neovim.py:
-- open a spec, see its lenses, start the SDLC from the lens, see the workflow finish, edit and save a file of
-- the new worktree, run its undo lens, and see the file restored on disk and in the buffer.
-- Results go to the JSON file $ADW_RESULT; an uncaught error would hang headless nvim, hence pcall.
-- run: ADW_PY=… ADW_ROOT=… ADW_RESULT=… nvim --headless -n -i NONE -u nvim_scenario.lua $ADW_ROOT/specs/x.md

local result = { steps = {}, messages = {}, commands = {} }
local function step(name) table.insert(result.steps, name) end

vim.lsp.handlers['window/showMessage'] = function(_, params)
  table.insert(result.messages, params.message)
end
-- Keep the result of commands run by lenses (codelens.run() sends them without handing the result back).
local execute = vim.lsp.handlers['workspace/executeCommand']
vim.lsp.handlers['workspace/executeCommand'] = function(err, res, ctx, config)
  table.insert(result.commands, { command = ctx.params and ctx.params.command, err = err and err.message, result = res })
  if execute then return execute(err, res, ctx, config) end
end
-- Several lenses share line 1: codelens.run() asks through vim.ui.select; pick the one the test wants.
local wanted = nil
vim.ui.select = function(items, opts, on_choice)
  for index, item in ipairs(items) do
    local title = opts.format_item and opts.format_item(item) or tostring(item)
    if wanted and vim.startswith(title, wanted) then return on_choice(item, index) end
  end
  error('no lens titled ' .. tostring(wanted))
end

local function titles(lenses)
  local out = {}
  for _, lens in ipairs(lenses or {}) do
    if lens.command then table.insert(out, lens.command.title) end
  end
  return out
end

local function wait_lens(bufnr, prefix, timeout)
  -- The codelens UI: refresh() is asynchronous; poll its cache until a lens with the title shows.
  local found = false
  vim.wait(timeout, function()
    for _, title in ipairs(titles(vim.lsp.codelens.get(bufnr))) do
      if vim.startswith(title, prefix) then found = true end
    end
    if not found then vim.lsp.codelens.refresh() end
    return found
  end, 200)
  assert(found, 'no lens ' .. prefix .. ' in ' .. vim.inspect(titles(vim.lsp.codelens.get(bufnr))))
end

local function run_lens(bufnr, prefix)
  local before = #result.commands
  wanted = prefix
  vim.api.nvim_win_set_cursor(0, { 1, 0 })
  vim.lsp.codelens.run()
  assert(vim.wait(30000, function() return #result.commands > before end, 50), 'lens ' .. prefix .. ' did not run')
  local ran = result.commands[#result.commands]
  assert(not ran.err, 'lens ' .. prefix .. ' failed: ' .. tostring(ran.err))
  return ran.result
end

local function test()
  local root = os.getenv('ADW_ROOT')
  local spec_buf = vim.api.nvim_get_current_buf()
  local id = vim.lsp.start_client({
    name = 'adw',
    cmd = { os.getenv('ADW_PY'), '-m', 'adw', 'lsp', '--stdio' },
    root_dir = root,
    workspace_folders = { { uri = vim.uri_from_fname(root), name = 'demo' } },
  })
  assert(id, 'start_client failed')
  local client = vim.lsp.get_client_by_id(id)
  vim.lsp.buf_attach_client(spec_buf, id)
  assert(vim.wait(20000, function() return client.initialized end, 50), 'initialize timed out')
  step('initialized')

  -- The spec's lenses, as a raw request and as the editor shows them.
  local resp = vim.lsp.buf_request_sync(spec_buf, 'textDocument/codeLens',
    { textDocument = vim.lsp.util.make_text_document_params(spec_buf) }, 10000)
  assert(resp and resp[id] and not resp[id].err, 'codeLens failed: ' .. vim.inspect(resp))
  result.spec_lenses = titles(resp[id].result)
  wait_lens(spec_buf, 'Start Parallel SDLC', 10000)
  step('spec lenses')

  -- Start the SDLC from the lens, then poll adw.server.status until the workflow is done.
  local started = run_lens(spec_buf, 'Start Parallel SDLC')
  local workflow_id = started.workflows[1].id
  result.workflow_id = workflow_id
  local status
  for _ = 1, 300 do
    local r = client.request_sync('workspace/executeCommand',
      { command = 'adw.server.status', arguments = { workflow_id } }, 10000, spec_buf)
    assert(r and not r.err, 'status failed: ' .. vim.inspect(r))
    status = r.result
    if status.state ~= 'pending' and status.state ~= 'running' then break end
    vim.wait(300)
  end
  result.state = status.state
  result.reason = status.reason
  result.worktree = status.cwd
  assert(status.state == 'succeeded', 'workflow ended ' .. tostring(status.state) .. ': ' .. tostring(status.reason))
  step('sdlc finished')

  -- Open the file the build wrote in the worktree, change it and save, then undo through the lens.
  local file = status.cwd .. '/src/calc/multiply.py'
  vim.cmd('edit ' .. vim.fn.fnameescape(file))
  local buf = vim.api.nvim_get_current_buf()
  vim.lsp.buf_attach_client(buf, id)
  result.original = table.concat(vim.api.nvim_buf_get_lines(buf, 0, -1, false), '\n')
  vim.api.nvim_buf_set_lines(buf, 0, -1, false, { 'def multiply(a, b):', '    return 0' })
  vim.cmd('write')
  result.edited = table.concat(vim.fn.readfile(file), '\n')
  wait_lens(buf, 'Undo to checkpoint', 10000)
  result.file_lenses = titles(vim.lsp.codelens.get(buf))
  local undone = run_lens(buf, 'Undo to checkpoint')
  result.undo_restored = undone.restored and undone.restored.number
  result.on_disk = table.concat(vim.fn.readfile(file), '\n')
  vim.cmd('edit!')  -- the buffer follows the file on disk
  result.buffer = table.concat(vim.api.nvim_buf_get_lines(buf, 0, -1, false), '\n')
  step('undo lens')
end

local function finish(ok, err)
  result.ok = ok
  result.error = err and tostring(err) or nil
  for _, c in pairs(vim.lsp.get_active_clients()) do c.stop() end -- shutdown + exit
  vim.wait(5000, function() return #vim.lsp.get_active_clients() == 0 end, 50)
  local out = io.open(os.getenv('ADW_RESULT'), 'w')
  out:write(vim.json.encode(result))
  out:close()
  vim.cmd('cquit ' .. (ok and 0 or 1))
end

vim.api.nvim_create_autocmd('VimEnter', { once = true, callback = function()
  vim.schedule(function()
    local ok, err = pcall(test)
    local done, fatal = pcall(finish, ok, err)
    if not done then io.stderr:write(tostring(fatal) .. '\n'); vim.cmd('cquit 2') end
  end)
end })
