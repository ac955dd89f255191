export { BUILTIN_PLUGINS, builtinRegistry } from './builtins.ts';
