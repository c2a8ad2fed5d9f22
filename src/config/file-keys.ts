/** Model field name -> config file key, for messages and locations (no zod: the diff of every
 *  change command reads it). */
export const FILE_KEY: Readonly<Record<string, string>> = {
  tableSize: 'table-size',
  nextHop: 'next-hop',
  upperThreshold: 'upper-threshold',
  lowerThreshold: 'lower-threshold',
  healthCheck: 'health-check',
  hashSeed: 'hash-seed',
  tcpFin: 'tcp-fin',
  expireNodestConn: 'expire-nodest-conn',
  expireQuiescentTemplate: 'expire-quiescent-template',
};
