import XMLBuilder from 'fast-xml-builder'
import { DescriptorFormatError } from './errors'

/**
 * Nodes in the shape fast-xml-builder writes with preserveOrder (the shape xml-tree.ts reads): one key
 * naming the element, its children in order, attributes under `:@`; the builder escapes with escapeXml.
 */
export type XmlNode = Record<string, unknown>

export function element (name: string, attributes: Record<string, string> = {}, children: XmlNode[] = []): XmlNode {
  return Object.keys(attributes).length === 0 ? { [name]: children } : { [name]: children, ':@': attributes }
}

export function textElement (name: string, text: string, attributes: Record<string, string> = {}): XmlNode {
  return element(name, attributes, [{ '#text': text }])
}

/** XML 1.0's characters (§2.2): no C0 controls but tab, newline and carriage return; no lone surrogates; no U+FFFE/U+FFFF. */
const NOT_XML = /[\u0000-\u0008\u000B\u000C\u000E-\u001F\uFFFE\uFFFF]|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/

const ESCAPES: Readonly<Record<string, string>> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&apos;', '\t': '&#9;', '\n': '&#10;', '\r': '&#13;' }

/**
 * A value as XML text. Tab, newline and carriage return become references, since a reader normalizes
 * them to spaces in an attribute (XML 1.0 §3.3.3): the value then reads back exactly as written.
 */
export function escapeXml (value: unknown): string {
  const text = String(value)
  if (NOT_XML.test(text)) throw new DescriptorFormatError(JSON.stringify(text), 'holds a character XML 1.0 cannot carry')
  return text.replace(/[&<>"'\t\n\r]/g, (c) => ESCAPES[c])
}

const builder = new XMLBuilder({
  preserveOrder: true,
  ignoreAttributes: false,
  attributeNamePrefix: '',
  format: true,
  suppressEmptyNode: true,
  processEntities: false,
  attributeValueProcessor: (_name: string, value: unknown) => escapeXml(value),
  tagValueProcessor: (_name: string, value: unknown) => escapeXml(value),
})

/** The nodes as indented XML text, two spaces a level, without a leading or trailing newline. */
export function buildXml (nodes: XmlNode[]): string {
  return builder.build(nodes).trim()
}
