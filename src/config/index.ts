export { parseConfigText } from './parse.js';
export { formatConfigYaml } from './format.js';
export { configFileSchema, type ConfigFile } from './schema.js';
export { readConfigFile, readConfigFileKind, desiredConfig, looksLikeIpvsadm, type ConfigFileContents } from './file.js';
