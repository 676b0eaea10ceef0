-- An agent's permission questions in Neovim (0.7+, headless): its own window/showMessageRequest handler shows
-- them through inputlist(), stubbed here as a person picking "Always for This Task" for the first question and
-- Deny for the others. Driven by tests/lsp/test_neovim_permissions.py; results go to $ADW_RESULT as JSON.

local result = { shown = {}, steps = {} }
local answers = { 2 }  -- inputlist() indexes: 1 Allow Once, 2 Always for This Task, 3 Deny; then 3 for the rest
vim.fn.inputlist = function(lines)
  table.insert(result.shown, lines)
  return table.remove(answers, 1) or 3
end

local function test()
  local root = os.getenv('ADW_ROOT')
  local buf = vim.api.nvim_get_current_buf()
  local id = vim.lsp.start_client({
    name = 'adw',
    cmd = { os.getenv('ADW_PY'), '-m', 'adw', 'lsp', '--stdio' },
    root_dir = root,
    workspace_folders = { { uri = vim.uri_from_fname(root), name = 'demo' } },
  })
  assert(id, 'start_client failed')
  local client = vim.lsp.get_client_by_id(id)
  vim.lsp.buf_attach_client(buf, id)
  assert(vim.wait(20000, function() return client.initialized end, 50), 'initialize timed out')
  local started = client.request_sync('workspace/executeCommand',
    { command = 'adw.server.startSdlc', arguments = { { root .. '/specs/multiply.md' } } }, 30000, buf)
  assert(started and not started.err, 'startSdlc failed: ' .. vim.inspect(started))
  local workflow_id = started.result.workflows[1].id
  local status
  for _ = 1, 400 do
    local r = client.request_sync('workspace/executeCommand',
      { command = 'adw.server.status', arguments = { workflow_id } }, 10000, buf)
    assert(r and not r.err, 'status failed: ' .. vim.inspect(r))
    status = r.result
    if status.state ~= 'pending' and status.state ~= 'running' then break end
    vim.wait(300)
  end
  for _, task in ipairs(status.tasks) do
    if task.id == 'build' then
      result.build_state = task.state
      result.decisions = {}
      for _, decision in ipairs(task.outputs.acp.permissions) do table.insert(result.decisions, decision.why) end
    end
  end
  table.insert(result.steps, 'workflow ended ' .. status.state)
end

dofile(vim.fn.fnamemodify(debug.getinfo(1, 'S').source:sub(2), ':h') .. '/nvim_run.lua')(test, result)
