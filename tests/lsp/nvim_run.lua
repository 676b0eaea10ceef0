-- How a headless Neovim scenario ends (Neovim 0.7 and >= 0.8): `test` runs once Neovim has started; then every LSP
-- client is stopped (shutdown + exit), `result` is written as JSON to $ADW_RESULT and Neovim exits with the verdict.
-- An uncaught error would hang headless Neovim, hence pcall. Use: dofile(<this file>)(test, result)
return function(test, result)
  local get_clients = vim.lsp.get_clients or vim.lsp.get_active_clients

  local function finish(ok, err)
    result.ok = ok
    result.error = err and tostring(err) or nil
    for _, client in pairs(get_clients()) do vim.lsp.stop_client(client.id) end
    vim.wait(5000, function() return #get_clients() == 0 end, 50)
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
end
