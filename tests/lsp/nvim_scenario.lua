-- The user scenario in Neovim (0.7 and >= 0.8, headless, built-in LSP client), driven by tests/lsp/test_neovim.py:
-- open a spec, see its lenses on the heading, start the SDLC from the lens, see its progress and the workflow
-- finish, keep a scout's ranking in the quickfix list, edit and save a file of the new worktree, run its
-- "Undo this file" lens from the changed line (no question asked) and see the file restored on disk and, through
-- autoread + :checktime, in the buffer.
-- The setup is docs/editors/adw.lua, loaded as a user does; results go to the JSON file $ADW_RESULT (an uncaught error
-- would hang headless nvim, hence pcall).
-- run: ADW_PY=… ADW_ROOT=… ADW_RESULT=… nvim --headless -n -i NONE -u nvim_scenario.lua $ADW_ROOT/specs/x.md

local result = { steps = {}, messages = {}, commands = {}, progress = {}, asked = 0 }
local function step(name) table.insert(result.steps, name) end
local adw_python = os.getenv('ADW_PY')

vim.g.adw_cmd = { adw_python, '-m', 'adw', 'lsp', '--stdio' }
local adw = dofile(os.getenv('ADW_SETUP'))  -- docs/editors/adw.lua, as a user loads it
local call = adw.call

vim.lsp.handlers['window/showMessage'] = function(_, params)
  table.insert(result.messages, params.message)
end
-- Keep the result of commands run by lenses (codelens.run() sends them without handing the result back).
local execute = vim.lsp.handlers['workspace/executeCommand']
vim.lsp.handlers['workspace/executeCommand'] = function(err, res, ctx, config)
  table.insert(result.commands, { command = ctx.params and ctx.params.command, err = err and err.message, result = res })
  if execute then return execute(err, res, ctx, config) end
end
local progress = vim.lsp.handlers['$/progress']
vim.lsp.handlers['$/progress'] = function(err, params, ctx, config)
  local value = params.value or {}
  table.insert(result.progress, { kind = value.kind, title = value.title, message = value.message })
  if progress then return progress(err, params, ctx, config) end
end
-- Several lenses on one line: codelens.run() asks through vim.ui.select; pick the one the test wants.
local wanted = nil
vim.ui.select = function(items, opts, on_choice)
  result.asked = result.asked + 1
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

local function lens_line(bufnr, prefix)
  for _, lens in ipairs(vim.lsp.codelens.get(bufnr) or {}) do
    if lens.command and vim.startswith(lens.command.title, prefix) then return lens.range.start.line end
  end
end

local function wait_lens(bufnr, prefix, timeout, line)
  -- The codelens UI: refresh() is asynchronous, and the edit reaches the server after a debounce; poll its cache
  -- until a lens with the title shows (on `line` when given).
  local ok = vim.wait(timeout, function()
    local at = lens_line(bufnr, prefix)
    if at and (line == nil or at == line) then return true end
    vim.lsp.codelens.refresh()
    return false
  end, 200)
  assert(ok, 'no lens ' .. prefix .. ' in ' .. vim.inspect(titles(vim.lsp.codelens.get(bufnr))))
  return lens_line(bufnr, prefix)
end

local function run_lens(bufnr, prefix)
  -- As a user does: the cursor on the lens's line, then <leader>l (codelens.run).
  local before = #result.commands
  wanted = prefix
  vim.api.nvim_win_set_cursor(0, { lens_line(bufnr, prefix) + 1, 0 })
  vim.lsp.codelens.run()
  assert(vim.wait(30000, function() return #result.commands > before end, 50), 'lens ' .. prefix .. ' did not run')
  local ran = result.commands[#result.commands]
  assert(not ran.err, 'lens ' .. prefix .. ' failed: ' .. tostring(ran.err))
  return ran.result
end

local get_clients = vim.lsp.get_clients or vim.lsp.get_active_clients

local function request_sync(client, method, params, bufnr)
  local r = call(client, 'request_sync', method, params, 10000, bufnr)
  assert(r and not r.err, method .. ' failed: ' .. vim.inspect(r))
  return r.result
end

local function test()
  local spec_buf = vim.api.nvim_get_current_buf()
  local client
  assert(vim.wait(20000, function()
    client = get_clients()[1]
    return client ~= nil and client.initialized
  end, 50), 'the adw client did not start and initialize')
  result.client_started_by = vim.lsp.start and 'vim.lsp.start' or 'vim.lsp.start_client'
  step('initialized')

  -- The spec's lenses sit on its heading.
  local heading = vim.fn.search('^#', 'nw') - 1
  result.heading_line = heading
  result.spec_lens_lines = { wait_lens(spec_buf, 'Start Parallel SDLC', 10000), wait_lens(spec_buf, 'Scout', 10000) }
  result.spec_lenses = titles(vim.lsp.codelens.get(spec_buf))
  step('spec lenses')

  -- Start the SDLC from the lens, then poll adw.server.status until the workflow is done.
  local started = run_lens(spec_buf, 'Start Parallel SDLC')
  local workflow_id = started.workflows[1].id
  result.workflow_id = workflow_id
  local status
  for _ = 1, 300 do
    status = request_sync(client, 'workspace/executeCommand',
      { command = 'adw.server.status', arguments = { workflow_id } }, spec_buf)
    if status.state ~= 'pending' and status.state ~= 'running' then break end
    vim.wait(300)
  end
  result.state = status.state
  result.reason = status.reason
  result.worktree = status.cwd
  assert(status.state == 'succeeded', 'workflow ended ' .. tostring(status.state) .. ': ' .. tostring(status.reason))
  step('sdlc finished')

  -- The scout's ranking in the quickfix list, `top` locations, best first.
  local before = #vim.fn.getqflist()
  adw.scout('multiply two numbers', 3)
  assert(vim.wait(30000, function() return vim.fn.getqflist({ title = 0 }).title:find('ADW scout') ~= nil end, 50),
    'the scout filled no quickfix list')
  result.quickfix = {}
  for _, item in ipairs(vim.fn.getqflist()) do
    table.insert(result.quickfix, { file = vim.api.nvim_buf_get_name(item.bufnr), line = item.lnum - 1 })
  end
  result.quickfix_before = before
  local report = request_sync(client, 'workspace/executeCommand',
    { command = 'adw.server.scout', arguments = { 'multiply two numbers', vim.NIL, 3 } }, spec_buf)
  result.ranking = {}
  for _, loc in ipairs(report.lspLocations) do
    table.insert(result.ranking, { file = vim.uri_to_fname(loc.uri), line = loc.range.start.line })
  end
  vim.cmd('cclose')
  step('scout in quickfix')

  -- Open the file the build wrote in the worktree (the autocmd attaches it), change its last line and save.
  local file = status.cwd .. '/src/calc/multiply.py'
  vim.cmd('edit ' .. vim.fn.fnameescape(file))
  local buf = vim.api.nvim_get_current_buf()
  assert(vim.wait(10000, function() return vim.lsp.buf_is_attached(buf, client.id) end, 50),
    'the worktree file was not attached to the running client')
  local lines = vim.api.nvim_buf_get_lines(buf, 0, -1, false)
  result.original = table.concat(lines, '\n')
  result.changed_line = #lines - 1
  vim.api.nvim_buf_set_lines(buf, #lines - 1, #lines, false, { '    return 0' })
  vim.cmd('write')
  result.edited = table.concat(vim.fn.readfile(file), '\n')
  wait_lens(buf, 'Undo to checkpoint', 10000)
  result.file_lenses = titles(vim.lsp.codelens.get(buf))
  result.undo_file_line = pcall(wait_lens, buf, 'Undo this file', 10000, result.changed_line)
    and result.changed_line or lens_line(buf, 'Undo this file')
  local asked = result.asked
  local undone = run_lens(buf, 'Undo this file')
  result.undo_file_asked = result.asked - asked
  result.undo_path = undone.path
  result.on_disk = table.concat(vim.fn.readfile(file), '\n')
  -- autoread + :checktime (the autocmds above run it on focus, buffer entry and idle cursor)
  vim.cmd('checktime')
  result.buffer = table.concat(vim.api.nvim_buf_get_lines(buf, 0, -1, false), '\n')
  step('undo lens')
end

dofile(vim.fn.fnamemodify(debug.getinfo(1, 'S').source:sub(2), ':h') .. '/nvim_run.lua')(test, result)
