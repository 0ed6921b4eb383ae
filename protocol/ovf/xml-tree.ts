import { XMLParser } from 'fast-xml-parser'
import { DescriptorFormatError } from './errors'
import { MESSAGE_PREFIX, OVF_NAMESPACES, XML } from './namespaces'

/** A name with its namespace resolved: documents choose their own prefixes, so code compares `ns` + `local`. */
export interface XmlName {
  readonly ns: string
  readonly local: string
}

export interface XmlAttribute extends XmlName {
  readonly value: string
  /** Where it is, for messages: `Envelope/VirtualSystem/@ovf:id`. */
  readonly path: string
}

export interface XmlElement extends XmlName {
  /** Where it is, for messages: `Envelope/VirtualSystem/VirtualHardwareSection/Item[2]`. */
  readonly path: string
  readonly attributes: readonly XmlAttribute[]
  readonly children: readonly XmlElement[]
  /** The element's own text (CDATA included), trimmed. */
  readonly text: string
  /** Where the element is in the parsed text: from its start tag's `<` to just after its end tag. */
  readonly start: number
  readonly end: number
}

/** fast-xml-parser's preserveOrder shape: one key naming the tag (or `#text`), and `:@` for attributes. */
type OrderedNode = Record<string | symbol, unknown>

const META = XMLParser.getMetaDataSymbol() as unknown as symbol

const parser = new XMLParser({
  preserveOrder: true,
  ignoreAttributes: false,
  attributeNamePrefix: '',
  parseTagValue: false,
  parseAttributeValue: false,
  // Attribute values are data (an id, a metric) and keep their spaces; element text is trimmed below.
  trimValues: false,
  ignoreDeclaration: true,
  ignorePiTags: true,
  captureMetaData: true,
  // Decodes numeric character references (&#62;), which the default leaves as text. It also accepts
  // HTML's named entities (&nbsp;), which strict XML would refuse: harmless when reading.
  htmlEntities: true,
})

/** Parses `text` (well-formedness checked) and resolves every namespace prefix; the message gives line and column. */
export function parseXml (text: string, what: string): XmlElement {
  let nodes: OrderedNode[]
  try {
    nodes = parser.parse(text, true) as OrderedNode[]
  } catch (err) {
    throw new DescriptorFormatError(what, `not well-formed XML: ${(err as Error).message}`, { cause: err })
  }
  const roots = nodes.filter((node) => tagOf(node) !== '#text')
  if (roots.length !== 1) throw new DescriptorFormatError(what, `not well-formed XML: ${roots.length} root elements (one is allowed)`)
  return resolve(roots[0], new Map([['xml', XML]]), '', undefined)
}

/** The children of `parent` named `ns` + `local`. */
export function childrenNamed (parent: XmlElement, ns: string | readonly string[], local: string): XmlElement[] {
  return parent.children.filter((child) => child.local === local && inNamespace(child, ns))
}

/** The attribute `ns` + `local` ('' for an unqualified attribute). */
export function attributeNamed (element: XmlElement, ns: string | readonly string[], local: string): XmlAttribute | undefined {
  return element.attributes.find((attr) => attr.local === local && inNamespace(attr, ns))
}

export function inNamespace (name: XmlName, ns: string | readonly string[]): boolean {
  return typeof ns === 'string' ? name.ns === ns : ns.includes(name.ns)
}

function tagOf (node: OrderedNode): string {
  return Object.keys(node).find((key) => key !== ':@') ?? '#text'
}

function resolve (node: OrderedNode, outer: ReadonlyMap<string, string>, parentPath: string, position: number | undefined): XmlElement {
  const tag = tagOf(node)
  const scope = scopeOf(node, outer)
  const elementName = qualify(tag, scope, true, `${parentPath ? `${parentPath}/` : ''}${tag}`)
  const path = `${parentPath ? `${parentPath}/` : ''}${display(elementName, false)}${position === undefined ? '' : `[${position}]`}`
  const attributes = attributesOf(node)
    .filter(([name]) => name !== 'xmlns' && !name.startsWith('xmlns:'))
    .map(([name, value]) => {
      const attrName = qualify(name, scope, false, path)
      return { ...attrName, value, path: `${path}/@${display(attrName, true)}` }
    })
  const content = (node[tag] ?? []) as OrderedNode[]
  const elements = content.filter((child) => tagOf(child) !== '#text')
  // Siblings are counted by resolved name, so `Item[2]` is the second Item whatever prefix each one used.
  const keys = elements.map((child) => {
    const name = qualify(tagOf(child), scopeOf(child, scope), true, `${path}/${tagOf(child)}`)
    return `{${name.ns}}${name.local}`
  })
  const totals = new Map<string, number>()
  for (const key of keys) totals.set(key, (totals.get(key) ?? 0) + 1)
  const seen = new Map<string, number>()
  const children = elements.map((child, i) => {
    const position = (seen.get(keys[i]) ?? 0) + 1
    seen.set(keys[i], position)
    return resolve(child, scope, path, (totals.get(keys[i]) ?? 0) > 1 ? position : undefined)
  })
  const text = content.filter((child) => tagOf(child) === '#text').map((child) => String(child['#text'])).join('').trim()
  const { startIndex, endIndex } = (node[META] ?? {}) as { startIndex?: number, endIndex?: number }
  return { ...elementName, path, attributes, children, text, start: startIndex ?? -1, end: endIndex ?? -1 }
}

function attributesOf (node: OrderedNode): Array<[string, string]> {
  return Object.entries((node[':@'] ?? {}) as Record<string, string>)
}

/** The prefixes in force inside `node`: the outer ones plus its own xmlns declarations. */
function scopeOf (node: OrderedNode, outer: ReadonlyMap<string, string>): ReadonlyMap<string, string> {
  const scope = new Map(outer)
  for (const [name, value] of attributesOf(node)) {
    if (name === 'xmlns') scope.set('', value)
    else if (name.startsWith('xmlns:')) scope.set(name.slice(6), value)
  }
  return scope
}

/** An element without a prefix is in the default namespace; an attribute without one is in none. */
function qualify (qname: string, scope: ReadonlyMap<string, string>, isElement: boolean, where: string): XmlName {
  const colon = qname.indexOf(':')
  if (colon < 0) return { ns: isElement ? scope.get('') ?? '' : '', local: qname }
  const prefix = qname.slice(0, colon)
  const ns = scope.get(prefix)
  if (ns === undefined) throw new DescriptorFormatError(where, `the prefix "${prefix}" of ${qname} is not declared (xmlns:${prefix} is missing)`)
  return { ns, local: qname.slice(colon + 1) }
}

/** The name as messages write it: OVF elements bare, OVF attributes as `ovf:`, a foreign namespace in braces. */
function display (name: XmlName, isAttribute: boolean): string {
  if (name.ns === '') return name.local
  if (isAttribute && OVF_NAMESPACES.includes(name.ns)) return `ovf:${name.local}`
  const prefix = MESSAGE_PREFIX[name.ns]
  if (prefix === undefined) return `{${name.ns}}${name.local}`
  return prefix === '' ? name.local : `${prefix}:${name.local}`
}
