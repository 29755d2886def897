/**
 * The two members of `@dr.pogodin/react-native-fs` that App.tsx uses, for the CI
 * type-check only (tsconfig.json `paths`): CI does not install the app's native
 * dependencies. In the app, `npm install` brings the package's own types.
 */
declare const DocumentDirectoryPath: string;
declare function mkdir(path: string): Promise<void>;
export { DocumentDirectoryPath, mkdir };
