/**
 * Metro for this example: the package is the sibling folder ../../react-native (a `file:`
 * dependency, i.e. a symlink in node_modules), so Metro watches it, and React, React
 * Native and NetInfo always come from this app's node_modules — never from the copies in
 * ../../react-native/node_modules (its dev dependencies), which would be a second React.
 */
const path = require('path');
const { getDefaultConfig, mergeConfig } = require('@react-native/metro-config');

const pkg = path.resolve(__dirname, '../../react-native');
const appModules = path.resolve(__dirname, 'node_modules');
const singletons = ['react', 'react-native', '@react-native-community/netinfo'];
const escape = (s) => s.replace(/[/\-\\^$*+?.()|[\]{}]/g, '\\$&');

module.exports = mergeConfig(getDefaultConfig(__dirname), {
  watchFolders: [pkg],
  resolver: {
    // The package's own copies of the singletons are invisible to Metro...
    blockList: singletons.map((m) => new RegExp(`^${escape(path.join(pkg, 'node_modules', m))}[/\\\\].*$`)),
    // ...so they resolve from here; so does the package itself.
    extraNodeModules: {
      '@outbox-sdk/react-native': pkg,
      ...Object.fromEntries(singletons.map((m) => [m, path.join(appModules, m)])),
    },
    nodeModulesPaths: [appModules, path.join(pkg, 'node_modules')],
  },
});
