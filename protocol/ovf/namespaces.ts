/** DMTF OVF envelope namespaces: 2.x is written; 1.x (VirtualBox's default export) is read as well. */
export const OVF_2 = 'http://schemas.dmtf.org/ovf/envelope/2'
export const OVF_1 = 'http://schemas.dmtf.org/ovf/envelope/1'
export const OVF_NAMESPACES: readonly string[] = [OVF_2, OVF_1]

/** CIM classes the VirtualHardwareSection's items and system use (DSP0243 §8.3). */
export const RASD = 'http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_ResourceAllocationSettingData'
export const VSSD = 'http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_VirtualSystemSettingData'

/** fedvm's own extension section (a URN: it names the format and is never fetched). */
export const FEDVM = 'urn:fedvm:ovf:monitoring:1'

export const XML = 'http://www.w3.org/XML/1998/namespace'

/**
 * The prefix a path in an error message gives each namespace, whatever prefix the document chose:
 * OVF's own elements go bare (`Envelope/VirtualSystem`), as DSP0243 writes them.
 */
export const MESSAGE_PREFIX: Readonly<Record<string, string>> = {
  [OVF_2]: '',
  [OVF_1]: '',
  [RASD]: 'rasd',
  [VSSD]: 'vssd',
  [FEDVM]: 'fedvm',
  [XML]: 'xml',
}
