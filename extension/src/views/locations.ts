// Scout results in the built-in References view (extension `vscode.references-view`, its `setInput` API),
// falling back to the peek widget when that extension is disabled.
import * as vscode from 'vscode';

interface SymbolTreeModel {
  message: string | undefined;
  provider: vscode.TreeDataProvider<vscode.Uri | vscode.Location>;
}

interface SymbolTreeInput {
  readonly contextValue: string;
  readonly title: string;
  readonly location: vscode.Location;
  resolve(): SymbolTreeModel;
  with(location: vscode.Location): SymbolTreeInput;
}

interface ReferencesViewApi {
  setInput(input: SymbolTreeInput): void;
}

export async function showLocations(title: string, locations: vscode.Location[], reasons: Map<vscode.Location, string>) {
  if (!locations.length) return;
  const extension = vscode.extensions.getExtension<ReferencesViewApi>('vscode.references-view');
  const api = extension && (extension.isActive ? extension.exports : await extension.activate());
  if (api?.setInput) {
    api.setInput(new ScoutInput(title, locations[0], locations, reasons));
    // The view focuses itself once it has checked the first location; focusing it here too lets the caller's
    // picker, shown next, take the focus back instead of being left behind it.
    await vscode.commands.executeCommand('references-view.tree.focus');
  } else {
    await vscode.commands.executeCommand('editor.action.showReferences', locations[0].uri, locations[0].range.start, locations);
  }
}

class ScoutInput implements SymbolTreeInput {
  readonly contextValue = 'adw.scout';

  constructor(readonly title: string, readonly location: vscode.Location,
    private readonly locations: vscode.Location[], private readonly reasons: Map<vscode.Location, string>) {}

  resolve(): SymbolTreeModel {
    return { message: `${this.locations.length} location(s)`, provider: new LocationTree(this.locations, this.reasons) };
  }

  with(location: vscode.Location): SymbolTreeInput {
    return new ScoutInput(this.title, location, this.locations, this.reasons);
  }
}

/** Files (in rank order of their best location), each with its locations. */
class LocationTree implements vscode.TreeDataProvider<vscode.Uri | vscode.Location> {
  private readonly files = new Map<string, vscode.Location[]>();

  constructor(locations: vscode.Location[], private readonly reasons: Map<vscode.Location, string>) {
    for (const location of locations) {
      const key = location.uri.toString();
      this.files.set(key, [...(this.files.get(key) ?? []), location]);
    }
  }

  getChildren(element?: vscode.Uri | vscode.Location): (vscode.Uri | vscode.Location)[] {
    if (!element) return [...this.files.keys()].map((key) => vscode.Uri.parse(key));
    return element instanceof vscode.Uri ? this.files.get(element.toString()) ?? [] : [];
  }

  getParent(element: vscode.Uri | vscode.Location): vscode.Uri | undefined {
    return element instanceof vscode.Location ? element.uri : undefined;
  }

  getTreeItem(element: vscode.Uri | vscode.Location): vscode.TreeItem {
    if (element instanceof vscode.Uri) {
      const item = new vscode.TreeItem(element, vscode.TreeItemCollapsibleState.Expanded);
      item.description = vscode.workspace.asRelativePath(element.with({ path: element.path.replace(/\/[^/]*$/, '') }));
      item.iconPath = vscode.ThemeIcon.File;
      return item;
    }
    const item = new vscode.TreeItem(`line ${element.range.start.line + 1}`);
    item.description = this.reasons.get(element);
    item.command = { command: 'vscode.open', title: 'Open', arguments: [element.uri, { selection: element.range }] };
    return item;
  }
}
